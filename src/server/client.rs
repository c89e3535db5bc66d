//! Who is asking: the client address a request is counted under by the failed-auth cap.
//!
//! The TCP peer is the client, unless the peer is one of `[server] trusted_proxies`: then the
//! client is the right-most `X-Forwarded-For` entry that is not itself a trusted proxy (each
//! proxy appends the address it received the request from, so the entries left of the first
//! untrusted one are whatever that client chose to send), or, without that header, the one
//! address in `X-Real-IP`. From an untrusted peer both headers are ignored: a client cannot
//! choose the bucket its failures are counted in. An entry that is not an address ends the walk
//! at the last trusted hop.
//!
//! Failures are counted per [`key`]: an IPv4 address, or an IPv6 /64 (one host usually holds a
//! whole /64, so counting per /128 would let it rotate addresses for ever).

use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client address of a request that came from `peer` with `headers`.
#[must_use]
pub(crate) fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(&ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if forwarded.is_empty() {
        return headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_entry(v.trim()))
            .unwrap_or(peer);
    }
    let mut client = peer;
    for entry in forwarded.iter().rev() {
        let Some(ip) = parse_entry(entry) else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, an `IPv4:port`, or a `[IPv6]:port`.
fn parse_entry(e: &str) -> Option<IpAddr> {
    e.parse::<IpAddr>().ok().or_else(|| e.parse::<std::net::SocketAddr>().ok().map(|s| s.ip())).map(canonical)
}

/// An IPv4-mapped IPv6 address is its IPv4 address (a dual-stack listener reports them so).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// What failures are counted under: the IPv4 address, or the IPv6 address's /64.
#[must_use]
pub(crate) fn key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_its_headers_say() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9"), ("x-real-ip", "203.0.113.10")]);
        assert_eq!(client_addr(ip("198.51.100.1"), &h, &nets(&["127.0.0.1/32"])), ip("198.51.100.1"));
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &[]), ip("127.0.0.1"), "no trusted proxies: no headers");
    }

    #[test]
    fn behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_forwarded_entry() {
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        // The client sent a forged first entry; the proxies appended what they saw.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.5")]);
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.9"));
        // Several header lines are one list, in order.
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "203.0.113.9:5555")]);
        assert_eq!(client_addr(ip("10.1.2.3"), &h, &trusted), ip("203.0.113.9"));
        // Every entry trusted: the left-most is the client.
        let h = headers(&[("x-forwarded-for", "10.0.0.7, 10.0.0.5")]);
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &trusted), ip("10.0.0.7"));
        // Garbage stops the walk at the last trusted hop.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, nonsense, 10.0.0.5")]);
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &trusted), ip("10.0.0.5"));
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &trusted), ip("2001:db8::1"));
    }

    #[test]
    fn x_real_ip_counts_only_without_x_forwarded_for_and_only_from_a_trusted_peer() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&[("x-real-ip", "203.0.113.10")]);
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.10"));
        let h = headers(&[("x-real-ip", "not an address")]);
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &trusted), ip("127.0.0.1"));
        let h = headers(&[("x-real-ip", "203.0.113.10"), ("x-forwarded-for", "203.0.113.11")]);
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.11"));
        let mapped = IpAddr::V6("::ffff:127.0.0.1".parse().unwrap());
        assert_eq!(client_addr(mapped, &headers(&[("x-real-ip", "203.0.113.10")]), &trusted), ip("203.0.113.10"));
    }

    #[test]
    fn ipv6_clients_are_counted_per_slash_64_and_ipv4_per_address() {
        assert_eq!(key(ip("2001:db8:1:2:aaaa::1")), key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_eq!(key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_ne!(key(ip("2001:db8:1:2::1")), key(ip("2001:db8:1:3::1")));
        assert_ne!(key(ip("192.0.2.1")), key(ip("192.0.2.2")));
        assert_eq!(key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
