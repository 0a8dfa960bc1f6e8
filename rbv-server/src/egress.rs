// SPDX-License-Identifier: MPL-2.0
//! Where the server may connect on a key holder's behalf (`video_url`,
//! background images, webhooks): public addresses only, unless the operator
//! allows private networks. Checked on every address a name resolves to (at
//! connect time, so a name cannot change its answer after the check) and on
//! every redirect; what a refused or failed fetch says does not tell what a
//! port answered.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

/// Networks no key holder may reach unless allowed: loopback, private,
/// link-local, carrier-grade NAT, benchmarking, multicast, reserved.
const NOT_PUBLIC: [&str; 17] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
    "64:ff9b:1::/48",
];

/// The egress policy: public addresses, plus the `allowed` networks.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allowed: Vec<IpNet>,
}

/// An address the policy refuses.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Reads `--allow-private-urls`: `all`, or networks `10.0.0.0/8,127.0.0.1`.
pub fn parse_networks(text: &str) -> Result<Vec<IpNet>, String> {
    let mut nets = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "all" {
            nets.push("0.0.0.0/0".parse().expect("a network"));
            nets.push("::/0".parse().expect("a network"));
        } else if let Ok(n) = part.parse::<IpNet>() {
            nets.push(n);
        } else if let Ok(ip) = part.parse::<IpAddr>() {
            nets.push(IpNet::from(ip));
        } else {
            return Err(format!(
                "`{part}` is not a network (10.0.0.0/8), an address or `all`"
            ));
        }
    }
    Ok(nets)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

pub fn is_public(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    !NOT_PUBLIC
        .iter()
        .any(|n| n.parse::<IpNet>().expect("a network").contains(&ip))
}

impl Policy {
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        let ip = canonical(ip);
        if is_public(ip) || self.allowed.iter().any(|n| n.contains(&ip)) {
            Ok(())
        } else {
            Err(Refused(format!(
                "{ip} is a private, loopback or reserved address, which this server does not connect to"
            )))
        }
    }

    /// Checks what a URL itself tells (scheme, an address written in it);
    /// names are checked when they are resolved.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!("{} is not an http(s) URL", url.scheme())));
        }
        let host = url
            .host_str()
            .ok_or_else(|| Refused("the URL has no host".into()))?;
        // The URL parser writes any address form (decimal, hex) as dotted
        // quads, and IPv6 in brackets.
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return self.check_ip(ip);
        }
        if host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().ends_with(".localhost")
        {
            return self.check_ip(IpAddr::from([127, 0, 0, 1]));
        }
        Ok(())
    }

    /// An HTTP client that connects only where the policy allows, follows
    /// at most `redirects` redirects (each checked; 0: a redirect is an
    /// answer like any other), with these timeouts.
    pub fn client(
        self: &Arc<Self>,
        redirects: usize,
        connect: Duration,
        read: Duration,
    ) -> reqwest::Result<reqwest::Client> {
        let p = self.clone();
        let redirect = if redirects == 0 {
            reqwest::redirect::Policy::none()
        } else {
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > redirects {
                    return attempt.error(Refused(format!("more than {redirects} redirects")));
                }
                match p.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            })
        };
        reqwest::Client::builder()
            .connect_timeout(connect)
            .read_timeout(read)
            .redirect(redirect)
            // A proxy would resolve and connect past the policy.
            .no_proxy()
            .dns_resolver(Resolver(self.clone()))
            .build()
    }
}

/// The system resolver, keeping only the addresses the policy allows.
struct Resolver(Arc<Policy>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| policy.check_ip(a.ip()).is_ok())
                .collect();
            if allowed.is_empty() && !addrs.is_empty() {
                return Err(Box::new(Refused(format!(
                    "{host} resolves to private, loopback or reserved addresses only, which this server does not connect to"
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// What a client is told about a failed fetch of `url`: a refusal by the
/// policy, or one sentence for every other failure (no connection, an error
/// status, a broken transfer), so answers cannot map a network. The detail
/// goes to the server's log.
pub fn client_message(what: &str, url: &str, err: &reqwest::Error) -> String {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return format!("{what} at {host} is not fetched: {r}");
        }
        source = e.source();
    }
    failed(what, &host)
}

/// The one message for a fetch that did not give a file.
pub fn failed(what: &str, host: &str) -> String {
    format!("{what} could not be fetched from {host} (no answer with the file)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_refused_unless_allowed() {
        let p = Policy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(p.check_ip(ip.parse().unwrap()).is_err(), "{ip}");
        }
        for ip in ["8.8.8.8", "93.184.216.34", "2606:4700::1111"] {
            assert!(p.check_ip(ip.parse().unwrap()).is_ok(), "{ip}");
        }
        let lo = Policy {
            allowed: parse_networks("127.0.0.2, 10.0.0.0/8").unwrap(),
        };
        assert!(lo.check_ip("127.0.0.2".parse().unwrap()).is_ok());
        assert!(lo.check_ip("10.9.9.9".parse().unwrap()).is_ok());
        assert!(lo.check_ip("127.0.0.1".parse().unwrap()).is_err());
        let all = Policy {
            allowed: parse_networks("all").unwrap(),
        };
        assert!(all.check_ip("::1".parse().unwrap()).is_ok());
        assert!(parse_networks("10.0.0.0/33").is_err());
        assert!(parse_networks("intranet").is_err());
    }

    #[test]
    fn urls_naming_local_hosts_are_refused() {
        let p = Policy::default();
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(p.check_url(&u("http://127.0.0.1:8080/metrics")).is_err());
        assert!(p.check_url(&u("http://[::1]/x")).is_err());
        assert!(p.check_url(&u("http://localhost/x")).is_err());
        assert!(
            p.check_url(&u("http://2130706433/x")).is_err(),
            "decimal 127.0.0.1"
        );
        assert!(p.check_url(&u("https://example.com/a.mp4")).is_ok());
        assert!(p.check_url(&u("ftp://example.com/a.mp4")).is_err());
    }
}
