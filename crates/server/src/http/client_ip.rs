//! The client's address behind a reverse proxy. Every real deployment puts
//! pasaporte behind one (nginx, a load balancer), and then every request
//! comes from the proxy's address: the per-client rate limit would count the
//! whole country as one client. With `--trusted-proxies` (addresses or CIDR
//! ranges), a request whose peer is a trusted proxy is attributed to the
//! right-most address of `X-Forwarded-For` (or of `Forwarded: for=` when
//! there is no `X-Forwarded-For`) that is not itself a trusted proxy: the
//! last hop a trusted proxy saw. What anyone else sends in those headers is
//! ignored, so a client cannot choose its own address.
//!
//! [`find_client`] runs first on every request and replaces the
//! `ConnectInfo` address that the limits, sign-in throttle and logs read;
//! the proxy's own address stays in [`ProxyPeer`].

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// Addresses and ranges whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// The peer a request came through when it was attributed to a client
/// behind a trusted proxy.
#[derive(Clone, Copy, Debug)]
pub struct ProxyPeer(pub SocketAddr);

/// Hops of a forwarding header looked at, at most (a limit on work per
/// request; real chains have one to three).
const HOPS_MAX: usize = 16;

impl TrustedProxies {
    /// `10.0.0.0/8, 192.168.1.7, ::1`: addresses or CIDR ranges separated
    /// by commas or spaces; empty trusts no one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for part in text
            .split([',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let net = match part.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match part.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(format!(
                            "--trusted-proxies: {part:?} is neither an address nor a CIDR range (e.g. 10.0.0.5 or 10.0.0.0/8)"
                        ));
                    }
                },
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client a request from `peer` with `headers` comes from.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_for(headers);
        let mut client = peer;
        for hop in hops.iter().rev().take(HOPS_MAX) {
            let Some(ip) = hop else {
                // Garbage where only trusted proxies write: believe nothing
                // further left.
                return client;
            };
            client = *ip;
            if !self.trusts(*ip) {
                return client;
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 (a dual-stack listener) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The hops of `X-Forwarded-For` (all its lines, in order), or else of
/// `Forwarded`'s `for=` parameters; `None` for a hop that does not parse
/// (`unknown`, an obfuscated name, garbage).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    if !xff.is_empty() {
        return xff.into_iter().map(parse_hop).collect();
    }
    headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_hop(value))
            })
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`, `"[2001:db8::1]:443"`.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let t = text.trim().trim_matches('"');
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    t.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<IpAddr>().ok())
        .map(canonical)
}

/// Attributes the request to its client (see the module doc).
pub async fn find_client(
    State(app): State<super::AppState>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if let Some(peer) = peer {
        let client = app
            .limits
            .trusted_proxies
            .client_of(peer.ip(), req.headers());
        if client != peer.ip() {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, 0)));
            req.extensions_mut().insert(ProxyPeer(peer));
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    /// The client a request from `peer` with these headers is counted as.
    fn check(trusted: &str, peer: &str, headers: &[(&str, &str)], client: &str) {
        let proxies = TrustedProxies::parse(trusted).expect("trusted proxies parse");
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let name = axum::http::HeaderName::from_bytes(k.as_bytes()).expect("header name");
            map.append(name, v.parse().expect("header value"));
        }
        assert_eq!(
            proxies.client_of(ip(peer), &map),
            ip(client),
            "trusted {trusted}, peer {peer}, headers {headers:?}"
        );
    }

    #[test]
    fn the_client_is_the_last_hop_a_trusted_proxy_saw() {
        let xff = "x-forwarded-for";
        // Nobody trusted (the default): headers change nothing.
        check("", "203.0.113.9", &[(xff, "198.51.100.1")], "203.0.113.9");
        // From an untrusted peer, forged headers change nothing.
        check(
            "10.0.0.1",
            "203.0.113.9",
            &[(xff, "198.51.100.1")],
            "203.0.113.9",
        );
        // Through the trusted proxy: the address it saw.
        check(
            "10.0.0.1",
            "10.0.0.1",
            &[(xff, "198.51.100.1")],
            "198.51.100.1",
        );
        // A client's forged hop, to the left of what the proxy appended.
        check(
            "10.0.0.1",
            "10.0.0.1",
            &[(xff, "1.2.3.4, 198.51.100.1")],
            "198.51.100.1",
        );
        // Two proxies in a range, header split over two lines.
        check(
            "10.0.0.0/8",
            "10.0.0.1",
            &[(xff, "1.2.3.4, 198.51.100.1"), (xff, "10.2.3.4")],
            "198.51.100.1",
        );
        // Only trusted hops: the farthest one.
        check(
            "10.0.0.0/8",
            "10.0.0.1",
            &[(xff, "10.9.9.9, 10.0.0.2")],
            "10.9.9.9",
        );
        // Garbage written by a trusted hop: nothing left of it is believed.
        check(
            "10.0.0.0/8",
            "10.0.0.1",
            &[(xff, "1.2.3.4, unknown, 10.0.0.2")],
            "10.0.0.2",
        );
        // No header from the proxy: the proxy itself.
        check("10.0.0.1", "10.0.0.1", &[], "10.0.0.1");
        // Ports and IPv6, and RFC 7239's Forwarded when there is no XFF.
        check(
            "10.0.0.1",
            "10.0.0.1",
            &[(xff, "198.51.100.1:5123")],
            "198.51.100.1",
        );
        check(
            "10.0.0.1",
            "10.0.0.1",
            &[(
                "forwarded",
                "for=192.0.2.60;proto=https, for=\"[2001:db8::7]:443\"",
            )],
            "2001:db8::7",
        );
        check("::1", "::1", &[(xff, "2001:db8::1")], "2001:db8::1");
        // An IPv4 proxy seen through a dual-stack socket.
        check(
            "127.0.0.1",
            "::ffff:127.0.0.1",
            &[(xff, "198.51.100.1")],
            "198.51.100.1",
        );
    }

    #[test]
    fn settings_say_what_is_wrong() {
        assert_eq!(
            TrustedProxies::parse(" ").expect("empty"),
            TrustedProxies::default()
        );
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8, 192.168.1.7 ::1")
                .expect("list")
                .0
                .len(),
            3
        );
        let e = TrustedProxies::parse("10.0.0.0/8,proxy.local").expect_err("a name");
        assert!(e.contains("\"proxy.local\""), "{e}");
    }
}
