//! The one cross-site check every state-changing request passes: citizen
//! pages, the console and the staff API.
//!
//! Browsers say where a request comes from in two headers. `Sec-Fetch-Site`
//! (Chromium 76, Firefox 90, Safari 16.4 and later) decides when present:
//! `same-origin` and `none` (typed or bookmarked by the person) pass;
//! `same-site` (another subdomain of ours, not this service) and
//! `cross-site` are refused, and so is any value we do not know. Without it
//! (older browsers), an `Origin` must name this service: the configured
//! public origin (`--public-url`) when there is one, else the `Host` the
//! request was sent to. `Origin: null` (a sandboxed iframe, a `data:` page, a
//! form under a `no-referrer` policy) is refused unless `Sec-Fetch-Site:
//! same-origin` vouches for it. A request with neither header is not from a
//! browser (curl, an integrator's client): it passes here, and the CSRF token
//! (console, staff API) or the JSON content type (citizen API) remains the
//! second, independent check.

use axum::http::{HeaderMap, header};

/// Whether a request came from another site (refuse it). `own_origin` is
/// the configured public origin (`scheme://host[:port]`), if any.
pub fn cross_site(headers: &HeaderMap, own_origin: Option<&str>) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        let site = site.trim();
        return !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"));
    }
    let Some(origin) = get(header::ORIGIN.as_str()) else {
        return false;
    };
    let origin = origin.trim();
    if origin.eq_ignore_ascii_case("null") {
        return true;
    }
    match own_origin {
        Some(own) => normalise(origin) != normalise(own),
        None => {
            let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
            match get(header::HOST.as_str()) {
                Some(host) => !strip_default_port(origin_host.trim_end_matches('/'))
                    .eq_ignore_ascii_case(strip_default_port(host.trim())),
                None => true,
            }
        }
    }
}

/// The origin (`scheme://host[:port]`, lower case, no default port) of a
/// public URL such as `https://citas.example.gov.co/`.
pub fn origin_of(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    normalise(&format!("{scheme}://{authority}"))
}

fn normalise(origin: &str) -> String {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    match origin.split_once("://") {
        Some((scheme, authority)) => {
            let default = match scheme {
                "http" => ":80",
                "https" => ":443",
                _ => "",
            };
            let authority = if default.is_empty() {
                authority
            } else {
                authority.strip_suffix(default).unwrap_or(authority)
            };
            format!("{scheme}://{authority}")
        }
        None => origin,
    }
}

/// `host:80` and `host:443` name the same host as `host` (a browser omits
/// the default port from `Origin`, a client may write it in `Host`).
fn strip_default_port(host: &str) -> &str {
    host.strip_suffix(":80")
        .or_else(|| host.strip_suffix(":443"))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "127.0.0.1:8080";
    const SELF: &str = "http://127.0.0.1:8080";

    /// Headers a client sent, whether they are refused, and who sends them.
    type Case<'a> = (&'a [(&'a str, &'a str)], bool, &'a str);

    /// One row: what a client sent, the configured public origin, refused?
    fn check(sent: &[(&str, &str)], own: Option<&str>, refused: bool, what: &str) {
        let mut h = HeaderMap::new();
        for (name, value) in sent {
            h.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes())
                    .unwrap_or_else(|_| unreachable!("test header names are valid")),
                value
                    .parse()
                    .unwrap_or_else(|_| unreachable!("test header values are valid")),
            );
        }
        assert_eq!(cross_site(&h, own), refused, "{what}");
    }

    #[test]
    fn what_real_browsers_send() {
        let host = ("host", HOST);
        let cases: &[Case] = &[
            // Chromium and Firefox, a form on our page, Referrer-Policy
            // same-origin or strict-origin-when-cross-origin: real Origin.
            (
                &[host, ("origin", SELF), ("sec-fetch-site", "same-origin")],
                false,
                "Chromium/Firefox same-origin form",
            ),
            // Chromium under `no-referrer`: Origin null, Sec-Fetch-Site vouches.
            (
                &[host, ("origin", "null"), ("sec-fetch-site", "same-origin")],
                false,
                "Chromium form under no-referrer",
            ),
            // Safari 16.4+: the same headers as Chromium.
            (
                &[host, ("origin", SELF), ("sec-fetch-site", "same-origin")],
                false,
                "Safari same-origin form",
            ),
            // The person typed the address or used a bookmark.
            (
                &[host, ("sec-fetch-site", "none")],
                false,
                "navigation the person started",
            ),
            // An old browser without Sec-Fetch-*: Origin decides.
            (&[host, ("origin", SELF)], false, "old browser, own origin"),
            (
                &[host, ("origin", "http://127.0.0.1:8080/")],
                false,
                "old browser, trailing slash",
            ),
            (
                &[host, ("origin", "https://evil.example")],
                true,
                "old browser, another site's form",
            ),
            (
                &[host, ("origin", "null")],
                true,
                "old browser, sandboxed iframe or data: page",
            ),
            // No browser at all (curl, an integrator): the token decides.
            (&[host], false, "no browser headers"),
            // Another site's form in a modern browser, with or without Origin.
            (
                &[
                    host,
                    ("origin", "https://evil.example"),
                    ("sec-fetch-site", "cross-site"),
                ],
                true,
                "cross-site form",
            ),
            (
                &[host, ("sec-fetch-site", "cross-site")],
                true,
                "cross-site without Origin",
            ),
            // A sandboxed iframe on another site: null and cross-site.
            (
                &[host, ("origin", "null"), ("sec-fetch-site", "cross-site")],
                true,
                "sandboxed iframe",
            ),
            // Another subdomain of the same site is not this service.
            (
                &[
                    ("host", "citas.example.gov.co"),
                    ("origin", "https://blog.example.gov.co"),
                    ("sec-fetch-site", "same-site"),
                ],
                true,
                "same-site subdomain",
            ),
            (
                &[host, ("origin", SELF), ("sec-fetch-site", "something-new")],
                true,
                "an unknown Sec-Fetch-Site value",
            ),
            (
                &[("origin", SELF)],
                true,
                "an Origin with no Host to compare with",
            ),
        ];
        for (sent, refused, what) in cases {
            check(sent, None, *refused, what);
        }
    }

    #[test]
    fn the_public_origin_decides_behind_a_proxy() {
        let own = Some("https://citas.example.gov.co");
        // A proxy forwarding its own Host: the Host says nothing useful.
        let proxied = ("host", "127.0.0.1:8080");
        check(
            &[proxied, ("origin", "https://citas.example.gov.co")],
            own,
            false,
            "old browser through the proxy",
        );
        check(
            &[proxied, ("origin", "https://citas.example.gov.co:443")],
            own,
            false,
            "default port written out",
        );
        check(
            &[proxied, ("origin", "http://citas.example.gov.co")],
            own,
            true,
            "plain http is another origin",
        );
        check(
            &[proxied, ("origin", SELF)],
            own,
            true,
            "the backend's own address is not the public origin",
        );
        check(
            &[
                proxied,
                ("origin", "null"),
                ("sec-fetch-site", "same-origin"),
            ],
            own,
            false,
            "modern browser through the proxy",
        );
    }

    #[test]
    fn origins_of_public_urls() {
        assert_eq!(
            origin_of("https://Citas.Example.gov.co/reservas?x=1"),
            "https://citas.example.gov.co"
        );
        assert_eq!(origin_of("http://127.0.0.1:80/"), "http://127.0.0.1");
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
