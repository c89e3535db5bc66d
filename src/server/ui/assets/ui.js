// tiny-forge's web page: live updates only. Everything works without this script (reload the
// page); with it, the previews refresh when a deploy starts or ends and a running deploy's log
// grows as it is written. EventSource reconnects by itself and resumes with Last-Event-ID.
"use strict";

function text(tag, cls, s) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  el.textContent = s;
  return el;
}

function pad(n) { return String(n).padStart(2, "0"); }

function followPreviews(live) {
  const es = new EventSource(live.dataset.changes);
  es.addEventListener("change", async () => {
    try {
      const r = await fetch(window.location.href, { credentials: "same-origin" });
      if (!r.ok) return;
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      const fresh = doc.getElementById("live");
      if (fresh) live.innerHTML = fresh.innerHTML;
    } catch (e) { /* the next change tries again */ }
  });
}

function stepState(ev) {
  switch (ev.type) {
    case "step_started": return "running";
    case "step_finished": {
      const ms = ev.elapsed_ms || 0;
      return "done in " + (ms < 1000 ? ms + "ms" : (ms / 1000).toFixed(1) + "s");
    }
    case "step_failed": return "failed: " + (ev.error || "");
    default: return null;
  }
}

function followDeploy(log) {
  const steps = document.getElementById("steps");
  const es = new EventSource(log.dataset.events);
  es.addEventListener("log", (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    const seq = m.lastEventId;
    if (seq && log.querySelector('li[data-seq="' + seq + '"]')) return;
    const li = document.createElement("li");
    li.dataset.seq = seq;
    const t = new Date(ev.ts_ms || Date.now());
    li.append(text("time", "", pad(t.getUTCHours()) + ":" + pad(t.getUTCMinutes()) + ":" + pad(t.getUTCSeconds())), " ",
      text("span", "level", ev.level || (ev.type === "step_failed" ? "error" : "info")), " ",
      text("span", "step", ev.step || ev.type), " ",
      text("span", "msg", ev.message || ev.error || ev.type.replace(/_/g, " ")));
    log.append(li);
    const state = stepState(ev);
    if (steps && state && ev.step) {
      let item = steps.querySelector('li[data-step="' + ev.step + '"]');
      if (!item) {
        item = document.createElement("li");
        item.dataset.step = ev.step;
        item.append(text("b", "", ev.step), " ", text("span", "state", ""));
        steps.append(item);
      }
      item.querySelector(".state").textContent = state;
    }
  });
  es.addEventListener("result", () => {
    es.close();
    // The page as the server renders a finished deploy: outcome, exit code, evidence.
    window.location.reload();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live && live.dataset.changes) followPreviews(live);
  const log = document.getElementById("log");
  if (log && log.dataset.events) followDeploy(log);
});
