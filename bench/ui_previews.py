"""Client side of bench/scale.sh: signs in to serve's web page with a token and times
`GET /ui` (the previews list), median of 20 after one warm-up. Standard library only; prints
milliseconds."""
import http.client
import statistics
import sys
import time
import urllib.parse

port, token = int(sys.argv[1]), sys.argv[2]
origin = f"http://127.0.0.1:{port}"
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("POST", "/ui/login", body=urllib.parse.urlencode({"token": token}),
          headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": origin})
r = c.getresponse()
r.read()
cookie = next((v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie"), None)
if r.status not in (302, 303) or cookie is None:
    raise SystemExit(f"sign-in refused: {r.status}")
times = []
for _ in range(21):
    t0 = time.perf_counter()
    c.request("GET", "/ui", headers={"Cookie": cookie})
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit(f"GET /ui: {r.status}")
    times.append((time.perf_counter() - t0) * 1000)
print(f"{statistics.median(times[1:]):.1f}")
