//! The network layer: an isolated stack, veth links with addresses and
//! routes, two guests on one bridge, macvlan, joining a namespace, 100
//! guests leaving nothing behind, and bad input.
//!
//! Rules these tests keep: every "host", "switch" and "LAN" other than
//! the machine's own network namespace is a namespace the test makes
//! (held by an `unshare --net sleep` child, so no mount appears on the
//! host); links the tests put in the machine's own namespace are named
//! `vg...` and carry addresses from 198.18.0.0/15 and fd42::/16 only; no
//! sysctl is touched.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Command as Host;

use common::netns::{TestNet, iproute2};
use common::*;
use vguest::{
    CapSet, Capabilities, Capability, Command, Context, Error, Filesystem, Guest, GuestBuilder, IdMap,
    Macvlan, Namespaces, NetError, NetnsPool, Network, Stdio, Veth,
};

/// A link name unique to this test process: `vg<pid><tag>`.
fn link(tag: &str) -> String {
    let name = format!("vg{}{tag}", std::process::id() % 100_000);
    assert!(name.len() <= 15, "{name} is too long for a link name");
    name
}

/// `ip ARGS` in the test's own (the machine's) network namespace.
fn host_ip(args: &[&str]) -> String {
    let out = Host::new(iproute2()).args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Links, addresses and routes of the machine's network namespace.
/// [`host_table`] once it equals `expected`, or after 30 s. A guest's
/// host end is parked (set down, renamed `vgx<index>`) when the guest
/// ends, and the kernel removes it with the guest's namespace moments
/// later, in the background; it promises no time, so the wait is generous.
fn settled_table(expected: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let table = host_table();
        if table == expected || std::time::Instant::now() > deadline {
            return table;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn host_table() -> String {
    [&["-o", "link"][..], &["-o", "addr"], &["route"], &["-6", "route"]]
        .iter()
        .map(|args| host_ip(args))
        .collect::<Vec<_>>()
        .join("\n")
        // Counters and link state of the host's own links may change
        // meanwhile; the set of names, addresses and routes may not.
        .lines()
        .map(|l| {
            l.split_whitespace().filter(|w| !w.starts_with("state")).take(4).collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Captures the host's state after a first spawn, which loads the
/// built-in init into a memfd this process keeps.
fn capture() -> HostState {
    assert!(sh(Guest::builder("warm"), "true").0.success());
    HostState::capture()
}

/// A guest with a busybox root and its own `/proc`, `/sys` (which shows
/// the guest's network namespace) and `/dev`.
fn guest(name: &str, net: Network) -> GuestBuilder {
    Guest::builder(name).filesystem(Filesystem::new(rootfs()).proc().sysfs().dev()).network(net)
}

fn script(text: &str) -> Command {
    Command::new("/bin/sh").args(["-c", text]).stdout(Stdio::Piped).stderr(Stdio::Piped)
}

/// Runs a shell script in a guest built by `builder` and returns its
/// stdout, asserting it succeeded.
fn run_ok(builder: GuestBuilder, text: &str) -> String {
    let (status, out, err) = sh(builder, text);
    assert!(status.success(), "{status}: {out}\n{err}");
    out
}

#[test]
fn none_guest_sees_only_lo_up_and_reaches_nothing() {
    if !root_or_skip("none") {
        return;
    }
    let _s = shared();
    let out = run_ok(
        guest("net-none", Network::new()),
        r#"
        ls /sys/class/net
        cat /sys/class/net/lo/operstate /sys/class/net/lo/flags
        ip -o addr | awk '{print $2, $3, $4}'
        ip route; ip -6 route | grep -v '^::1'
        ping -c1 -W1 127.0.0.1 >/dev/null && echo loopback-answers
        nc -w1 198.18.0.1 80 </dev/null 2>&1 | grep -o 'Network is unreachable'
        nc -w1 192.0.2.1 80 </dev/null 2>&1 | grep -o 'Network is unreachable'
        "#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "lo",
            "unknown",
            "0x9",
            "lo inet 127.0.0.1/8",
            "lo inet6 ::1/128",
            "loopback-answers",
            "Network is unreachable",
            "Network is unreachable"
        ],
        "{out}"
    );
}

/// The whole check of one veth guest, shared by the plain and the user
/// namespace variant: what the guest sees inside, and the host side while
/// it lives and after.
fn check_veth_guest(tag: &str, context: Context, pool: Option<&NetnsPool>) {
    let name = link(tag);
    let before = host_table();
    let net = match pool {
        Some(pool) => Network::new().pool(pool),
        None => Network::new(),
    };
    let net = net.veth(
        Veth::new(&name)
            .address("198.18.10.2/24")
            .address("fd42:10::2/64")
            .gateway("198.18.10.1")
            .gateway("fd42:10::1")
            .route("198.19.10.0/24", Some("198.18.10.254"))
            .mtu(1400)
            .mac("02:42:c6:12:0a:02")
            .host_address("198.18.10.1/24")
            .host_address("fd42:10::1/64"),
    );
    let text = r#"
        ls /sys/class/net | tr '\n' ' '; echo
        cat /sys/class/net/eth0/mtu /sys/class/net/eth0/address /sys/class/net/eth0/operstate /sys/class/net/eth0/ifindex
        ip -o addr show dev eth0 | awk '{print $3, $4}' | grep -v fe80
        ip route | sort
        ip -6 route | grep -v -e fe80 -e multicast | awk '{print $1, $2, $3}' | sort
        ping -c1 -W2 198.18.10.1 >/dev/null && echo host-side-answers-v4
        ping6 -c1 -W2 fd42:10::1 >/dev/null && echo host-side-answers-v6
        echo END
        read wait_for_the_test
    "#;
    let mut cmd = script(text);
    cmd = cmd.stdin(Stdio::Piped);
    let mut g = guest(&format!("net-{tag}"), net).context(context).command(cmd).spawn().unwrap();
    assert_eq!(g.host_links(), [name.as_str()]);
    let mut out = BufReader::new(g.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 || line.trim() == "END" {
            break;
        }
        lines.push(line.trim_end().to_string());
    }
    assert_eq!(
        lines,
        [
            "eth0 lo",
            "1400",
            "02:42:c6:12:0a:02",
            "up",
            "2",
            "inet 198.18.10.2/24",
            "inet6 fd42:10::2/64",
            "198.18.10.0/24 dev eth0 scope link  src 198.18.10.2",
            "198.19.10.0/24 via 198.18.10.254 dev eth0",
            "default via 198.18.10.1 dev eth0",
            "default via fd42:10::1",
            "fd42:10::/64 dev eth0",
            "host-side-answers-v4",
            "host-side-answers-v6",
        ]
        .map(String::from),
        "guest {tag}: {lines:#?}"
    );
    // The host side, while the guest lives: its name, MTU, addresses.
    let shown = host_ip(&["-o", "addr", "show", "dev", &name]);
    assert!(shown.contains("198.18.10.1/24") && shown.contains("fd42:10::1/64"), "{shown}");
    assert!(host_ip(&["-o", "link", "show", &name]).contains("mtu 1400"));
    drop(g.stdin.take().map(|mut s| s.write_all(b"go\n")));
    assert!(g.wait().unwrap().success());
    assert!(g.host_links().is_empty());
    // The name is free at once, for the next guest.
    let names: Vec<String> = host_ip(&["-o", "link"])
        .lines()
        .filter_map(|l| Some(l.split(": ").nth(1)?.split('@').next()?.to_string()))
        .collect();
    assert!(
        names.len() > 1 && !names.contains(&name.to_string()),
        "{name} still named after the wait: {names:?}"
    );
    assert_eq!(before, settled_table(&before), "guest {tag} left something on the host");
    println!("veth {tag}: guest saw {lines:?}; host side {name} gone afterwards");
}

#[test]
fn veth_guest_sees_its_addresses_mtu_mac_and_routes() {
    if !root_or_skip("veth") {
        return;
    }
    let _x = exclusive();
    let before = capture();
    check_veth_guest("v", Context::new(), None);
    before.assert_unchanged("veth guest");
}

#[test]
fn veth_guest_with_a_user_namespace_owns_its_stack() {
    if !root_or_skip("veth userns") {
        return;
    }
    let _x = exclusive();
    let before = capture();
    let ctx = Context::new()
        .namespaces(Namespaces::default() | Namespaces::USER)
        .uid_map(IdMap::new(0, 400_000, 65_536))
        .gid_map(IdMap::new(0, 400_000, 65_536));
    check_veth_guest("u", ctx, None);
    before.assert_unchanged("veth guest with a user namespace");
}

/// Reads a guest's stdout to the end and waits for it, which must succeed.
fn collect(g: Guest) -> String {
    let (status, out, err) = finish(g);
    assert!(status.success(), "{status}: {out}\n{err}");
    out
}

/// A server script. Its stdin is a pipe the test keeps open: busybox `nc
/// -l` that sees end of file on stdin may quit before it has read what
/// the client sent.
fn listener(text: &str) -> Command {
    script(text).stdin(Stdio::Piped)
}

/// A client script that retries until the server listens (at most ~5 s).
fn send(message: &str, ip: &str, port: u16) -> String {
    format!(
        "n=0; until echo {message} | nc -w2 {ip} {port}; do n=$((n+1)); [ $n -gt 50 ] && exit 1; sleep 0.1; done"
    )
}

#[test]
fn two_guests_on_one_bridge_talk_tcp_over_ipv4_and_ipv6() {
    if !root_or_skip("bridge") {
        return;
    }
    let _s = shared();
    let before = capture();
    let switch = TestNet::new();
    switch.ip(&["link", "add", "br0", "type", "bridge"]);
    switch.ip(&["link", "set", "br0", "up"]);
    let port = |tag: &str, addrs: [&str; 2]| {
        Network::new().veth(
            Veth::new(link(tag)).host_netns(switch.path()).bridge("br0").address(addrs[0]).address(addrs[1]),
        )
    };
    let server = guest("net-br-server", port("bs", ["198.18.20.2/24", "fd42:20::2/64"]))
        .command(listener("nc -l -p 7000; nc -l -p 7001"))
        .spawn()
        .unwrap();
    // The client stays until its stdin closes: a guest that ended takes
    // its veth pair, and the host side with it, out of the bridge.
    let mut client = guest("net-br-client", port("bc", ["198.18.20.3/24", "fd42:20::3/64"]))
        .command(
            script(&format!(
                "{} && {}; sent=$?; read -r line; exit $sent",
                send("over-ipv4", "198.18.20.2", 7000),
                send("over-ipv6", "fd42:20::2", 7001)
            ))
            .stdin(Stdio::Piped),
        )
        .spawn()
        .unwrap();
    // Both host sides sit in the switch's bridge while the guests live.
    let ports = switch.ip(&["-o", "link", "show", "master", "br0"]);
    assert!(ports.contains(&link("bs")) && ports.contains(&link("bc")), "{ports}");
    drop(client.stdin.take());
    collect(client);
    let got = collect(server);
    assert_eq!(got, "over-ipv4\nover-ipv6\n");
    let left = switch.ip(&["-o", "link"]);
    assert!(!left.contains(&link("b")), "links left in the switch: {left}");
    before.assert_mounts_unchanged("bridge");
    println!("bridge: the server received {got:?} over IPv4 and IPv6");
}

#[test]
fn macvlan_guest_talks_to_a_peer_on_the_parent_link() {
    if !root_or_skip("macvlan") {
        return;
    }
    let _s = shared();
    let before = capture();
    // A LAN namespace with the parent link, whose other end is a peer
    // host in a namespace of its own.
    let lan = TestNet::new();
    let peer = TestNet::new();
    let pid = peer.pid().to_string();
    lan.ip(&["link", "add", "uplink", "type", "veth", "peer", "name", "far", "netns", &pid]);
    lan.ip(&["link", "set", "uplink", "up"]);
    peer.ip(&["addr", "add", "198.18.30.1/24", "dev", "far"]);
    peer.ip(&["link", "set", "far", "up"]);
    // The peer's server is a guest that joins the peer's namespace.
    let server = guest("net-mv-peer", Network::join(peer.path()))
        .command(listener("ls /sys/class/net | tr '\\n' ' '; nc -l -p 7002"))
        .spawn()
        .unwrap();
    let net = Network::new().macvlan(
        Macvlan::new("uplink").parent_netns(lan.path()).address("198.18.30.10/24").mac("02:42:c6:12:1e:0a"),
    );
    let client = guest("net-mv", net)
        .command(script(&format!(
            "cat /sys/class/net/eth0/address; ip -o link show eth0 | grep -o macvlan; {}",
            send("over-macvlan", "198.18.30.1", 7002)
        )))
        .spawn()
        .unwrap();
    let seen = collect(client);
    assert_eq!(seen, "02:42:c6:12:1e:0a\n", "the macvlan guest saw {seen:?}");
    let got = collect(server);
    assert_eq!(got, "far lo over-macvlan\n");
    // The macvlan lived in the guest's namespace only.
    assert!(!lan.ip(&["-o", "link"]).contains("macvlan"));
    before.assert_mounts_unchanged("macvlan");
    println!("macvlan: the peer received {got:?}");
}

#[test]
fn exec_into_a_veth_guest_sees_its_interface() {
    if !root_or_skip("exec veth") {
        return;
    }
    let _x = exclusive();
    let before_table = host_table();
    let name = link("e");
    let g = guest("net-exec", Network::new().veth(Veth::new(&name).address("198.18.40.2/24")))
        .command(Command::new("/bin/sleep").arg("60"))
        .spawn()
        .unwrap();
    let out = g
        .exec(
            Command::new("/bin/sh")
                .args(["-c", "ip -o addr show dev eth0 | awk '{print $4}' | grep -v fe80"])
                .stdout(Stdio::Piped),
        )
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "198.18.40.2/24\n");
    drop(g);
    assert_eq!(before_table, settled_table(&before_table));
}

#[test]
fn a_hundred_veth_guests_leave_no_link_address_or_route() {
    if !root_or_skip("hundred") {
        return;
    }
    let _x = exclusive();
    let before = capture();
    let table = host_table();
    let rounds = repeats("hundred veth guests", 100, 20);
    for i in 0..rounds {
        let net = Network::new().veth(
            Veth::new(link(&format!("h{i}")))
                .address(format!("198.18.{}.{}/30", 100 + i / 60, 4 * (i % 60) + 2))
                .host_address(format!("198.18.{}.{}/30", 100 + i / 60, 4 * (i % 60) + 1))
                .address(format!("fd42:100:{i:x}::2/64")),
        );
        let builder = Guest::builder(format!("net-h{i}")).network(net);
        if i % 2 == 0 {
            // Waited for.
            let mut g = builder.command(Command::new("/bin/true")).spawn().unwrap();
            assert!(g.wait().unwrap().success());
        } else {
            // Dropped while it runs.
            let g = builder.command(Command::new("/bin/sleep").arg("60")).spawn().unwrap();
            assert_eq!(g.host_links().len(), 1);
            drop(g);
        }
    }
    assert_eq!(table, settled_table(&table), "links, addresses or routes left on the host");
    before.assert_unchanged("hundred veth guests");
    println!("{rounds} veth guests made and removed; the host's links, addresses and routes are as before");
}

fn net_err(builder: GuestBuilder) -> NetError {
    match builder.command(Command::new("/bin/true")).spawn() {
        Err(Error::Net(e)) => e,
        Err(other) => panic!("expected a network error, got {other} ({other:?})"),
        Ok(mut g) => {
            let _ = g.wait();
            panic!("spawn succeeded")
        }
    }
}

#[test]
fn bad_input_gives_typed_errors_and_leaves_nothing() {
    if !root_or_skip("bad input") {
        return;
    }
    let _x = exclusive();
    let before = capture();
    let table = host_table();
    let b = |net: Network| Guest::builder("net-bad").network(net);
    let v = |tag: &str| Veth::new(link(tag)).address("198.18.50.2/24");

    let too_long = net_err(b(Network::new().veth(Veth::new("vg-sixteen-bytes"))));
    assert!(
        matches!(&too_long, NetError::Invalid { link, setting: "host-side name", .. } if link == "vg-sixteen-bytes"),
        "{too_long:?}"
    );
    let bad_addr = net_err(b(Network::new().veth(v("a").address("198.18.50.300/24"))));
    assert!(
        matches!(&bad_addr, NetError::Invalid { value, .. } if value == "198.18.50.300/24"),
        "{bad_addr:?}"
    );
    let conflict = net_err(b(Network::new().veth(v("a")).veth(v("b").name("eth1"))));
    assert!(
        matches!(&conflict, NetError::Conflict { value, .. } if value == "198.18.50.2/24"),
        "{conflict:?}"
    );
    let off_link = net_err(b(Network::new().veth(v("a").gateway("198.18.51.1"))));
    assert!(matches!(&off_link, NetError::Invalid { setting: "gateway", .. }), "{off_link:?}");
    let host_mode = net_err(b(Network::host().veth(v("a"))));
    assert!(matches!(host_mode, NetError::Unsupported { .. }));

    // A name that is already taken on the host: the running guest keeps
    // its link, the second spawn fails naming it.
    let first = Guest::builder("net-dup")
        .network(Network::new().veth(v("d")))
        .command(Command::new("/bin/sleep").arg("60"))
        .spawn()
        .unwrap();
    let dup = net_err(b(Network::new().veth(Veth::new(link("d")))));
    assert!(matches!(&dup, NetError::LinkExists { name, .. } if *name == link("d")), "{dup:?}");
    assert!(host_ip(&["-o", "link", "show", &link("d")]).contains(&link("d")));
    drop(first);

    // Missing bridge and macvlan parent, in a namespace of the test's.
    let switch = TestNet::new();
    let no_bridge = net_err(b(Network::new().veth(v("a").host_netns(switch.path()).bridge("nobr0"))));
    assert!(
        matches!(&no_bridge, NetError::NoSuchLink { role: "bridge", name, .. } if name == "nobr0"),
        "{no_bridge:?}"
    );
    let no_parent = net_err(b(Network::new().macvlan(Macvlan::new("noparent0").parent_netns(switch.path()))));
    assert!(
        matches!(&no_parent, NetError::NoSuchLink { role: "macvlan parent", name, .. } if name == "noparent0"),
        "{no_parent:?}"
    );
    // The kernel refuses the second of two equal routes after the veth
    // exists: the host side must go again.
    let twice =
        net_err(b(Network::new().veth(v("r").route("198.19.50.0/24", None).route("198.19.50.0/24", None))));
    assert!(
        matches!(&twice, NetError::Netlink { op: "adding route", source, .. } if source.raw_os_error() == Some(libc::EEXIST)),
        "{twice:?}"
    );
    let messages = [&too_long, &bad_addr, &conflict, &dup, &no_bridge, &twice].map(|e| e.to_string());
    println!("bad input: {messages:#?}");
    switch.settle();
    assert_eq!(switch.ip(&["-o", "link"]).lines().count(), 1, "only lo in the switch");
    drop(switch);
    assert_eq!(table, settled_table(&table), "bad input left something on the host");
    before.assert_unchanged("bad network input");
}

#[test]
fn pooled_namespaces_are_fresh_for_every_guest_and_leave_nothing() {
    if !root_or_skip("pool") {
        return;
    }
    let _x = exclusive();
    let before = capture();
    let pool = NetnsPool::new(2).unwrap();
    // A veth guest in a pooled namespace sees what any veth guest sees.
    check_veth_guest("p", Context::new(), Some(&pool));
    // A guest that changes its namespace (it may: CAP_NET_ADMIN) leaves
    // nothing for the next one: each gets a namespace of its own.
    let mut caps = CapSet::server_default();
    caps.insert(Capability::CAP_NET_ADMIN);
    let admin = Context::new().capabilities(Capabilities::only(caps));
    let seen: Vec<String> = (0..4)
        .map(|i| {
            run_ok(
                guest(&format!("net-pool{i}"), Network::new().pool(&pool)).context(admin.clone()),
                "readlink /proc/self/ns/net; ip -o addr | awk '{print $2, $4}' | tr '\\n' ' '; ip addr add 198.18.90.1/24 dev lo",
            )
        })
        .collect();
    // The pool made at least the first (it is ready before new returns),
    // so at least one guest joined a pooled namespace.
    let taken = pool.handed_out();
    assert!((1..=5).contains(&taken), "{taken} namespaces taken from the pool");
    let ids: std::collections::BTreeSet<&str> = seen.iter().map(|s| s.lines().next().unwrap()).collect();
    assert_eq!(ids.len(), 4, "namespaces reused: {seen:?}");
    for s in &seen {
        assert_eq!(s.lines().nth(1), Some("lo 127.0.0.1/8 lo ::1/128 "), "{seen:?}");
    }
    // A guest with a user namespace needs one it owns: the pool is not used.
    let ctx = Context::new()
        .namespaces(Namespaces::default() | Namespaces::USER)
        .uid_map(IdMap::new(0, 400_000, 65_536))
        .gid_map(IdMap::new(0, 400_000, 65_536))
        .capabilities(Capabilities::only(caps));
    let owner = run_ok(
        guest("net-pool-userns", Network::new().pool(&pool)).context(ctx),
        "ip link set lo down && echo owns-it",
    );
    assert_eq!(owner, "owns-it\n");
    assert_eq!(pool.handed_out(), taken, "a guest with a user namespace took a pooled namespace");
    drop(pool);
    before.assert_unchanged("netns pool");
    println!(
        "pool: 5 guests, 5 fresh namespaces, {taken} of them pooled; dropping the pool left no fd or process"
    );
}

#[test]
fn a_fresh_namespace_made_beside_the_child_is_the_guests_own() {
    if !root_or_skip("fresh namespace") {
        return;
    }
    let _s = shared();
    let before = capture();
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut caps = CapSet::server_default();
    caps.insert(Capability::CAP_NET_ADMIN);
    let text = "readlink /proc/self/ns/net; ip -o link | awk '{print $2, $3}'; \
                ip addr add 198.18.91.1/32 dev lo && echo configured";
    // Without a sysfs the child joins the namespace after its mounts;
    // with one, before them (sysfs shows the mounter's namespace).
    let no_sysfs = Filesystem::new(rootfs()).proc().dev();
    for (label, userns) in [("host user namespace", false), ("own user namespace", true)] {
        let mut ctx = Context::new().capabilities(Capabilities::only(caps));
        if userns {
            ctx = ctx
                .namespaces(Namespaces::default() | Namespaces::USER)
                .uid_map(IdMap::new(0, 400_000, 65_536))
                .gid_map(IdMap::new(0, 400_000, 65_536));
        }
        for (fs_label, builder) in [
            ("joined after the mounts", Guest::builder("net-fresh").filesystem(no_sysfs.clone())),
            ("joined before the sysfs", guest("net-fresh-sys", Network::new())),
        ] {
            let out = run_ok(builder.context(ctx.clone()), text);
            let lines: Vec<&str> = out.lines().collect();
            assert_ne!(lines[0], host_ns.to_str().unwrap(), "{label}, {fs_label}: the host's namespace");
            assert!(lines[1].starts_with("lo: <LOOPBACK,UP"), "{label}, {fs_label}: {out}");
            assert_eq!(&lines[2..], ["configured"], "{label}, {fs_label}: {out}");
            println!("{label}, {fs_label}: {} with only lo, up, configurable by the guest", lines[0]);
        }
    }
    before.assert_unchanged("fresh network namespaces");
}
