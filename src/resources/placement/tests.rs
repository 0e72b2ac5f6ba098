//! Unit tests of placement: which groups a guest gets on fake v1, hybrid
//! and v2 trees (temporary directories and mount tables), where they go
//! with and without a configured parent, and the typed errors for what
//! cannot be placed.

use super::*;
use crate::resources::hierarchies::tests::{hybrid_mountinfo, v1_mountinfo, v2_mountinfo};

const HYBRID_SELF: &str = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n\
    4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vguest-placement-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wanted(hard: &[Controller]) -> Wanted {
    Wanted {
        hard: hard.iter().copied().collect(),
        soft: [Controller::Memory, Controller::Pids, Controller::Cpuacct, Controller::Freezer].into(),
    }
}

#[test]
fn hybrid_uses_v1_for_limits_and_the_unified_mount_for_membership() {
    let root = temp("hybrid");
    std::fs::create_dir_all(root.join("unified")).unwrap();
    std::fs::write(root.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
    std::fs::write(root.join("unified/cgroup.subtree_control"), "").unwrap();
    let hier = Hierarchies::parse(&hybrid_mountinfo(&root));
    let plans =
        place(&hier, HYBRID_SELF, &wanted(&[Controller::Memory, Controller::Cpu]), None, "g.1.0").unwrap();
    let labels: Vec<&str> = plans.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, ["unified", "memory", "cpu", "cpuacct", "pids", "freezer"]);
    let unified = &plans[0];
    assert!(unified.v2 && unified.enable.is_empty());
    // cpuacct and freezer are v1 fallbacks for what the v2 group offers.
    assert_eq!(unified.serves, [Controller::Cpuacct, Controller::Freezer]);
    assert_eq!(plans[3].fallback, [(Controller::Cpuacct, "cpu.stat")]);
    assert_eq!(plans[5].fallback, [(Controller::Freezer, "cgroup.kill")]);
    assert!(plans[1].fallback.is_empty());
    assert_eq!(unified.dir(), root.join("unified/vguest/g.1.0"));
    // The memory group goes below the caller's own memory group.
    assert_eq!(plans[1].dir(), root.join("memory/process_api/abc/vguest/g.1.0"));
    assert_eq!(plans[4].dir(), root.join("pids/vguest/g.1.0"));
    // A configured parent replaces `vguest`: absolute from the
    // hierarchy's root, relative beneath the caller's own group.
    let plans = place(&hier, HYBRID_SELF, &wanted(&[]), Some(Path::new("/machine/web")), "g.1.1").unwrap();
    assert_eq!(plans[1].dir(), root.join("memory/machine/web/g.1.1"));
    let plans = place(&hier, HYBRID_SELF, &wanted(&[]), Some(Path::new("pool/a")), "g.1.2").unwrap();
    assert_eq!(plans[1].dir(), root.join("memory/process_api/abc/pool/a/g.1.2"));
    assert_eq!(plans[3].dir(), root.join("pids/pool/a/g.1.2"));
    // Without the caller's v1 lines its groups cannot be found.
    let err = place(&hier, "0::/\n", &wanted(&[Controller::Io]), None, "x").unwrap_err();
    assert!(matches!(err, ResourceError::Placement { .. }), "{err}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn v1_co_mounted_cpu_and_cpuacct_share_one_group() {
    let root = temp("v1");
    let hier = Hierarchies::parse(&v1_mountinfo(&root));
    let own = "6:pids:/\n5:blkio:/\n4:freezer:/\n3:memory:/user\n2:cpuset:/\n1:cpu,cpuacct:/svc\n";
    let plans = place(&hier, own, &wanted(&[Controller::Cpu, Controller::Cpuset]), None, "l").unwrap();
    let labels: Vec<&str> = plans.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, ["memory", "cpu,cpuacct", "cpuset", "pids", "freezer"]);
    assert_eq!(plans[1].serves, [Controller::Cpu, Controller::Cpuacct]);
    assert_eq!(plans[1].dir(), root.join("cpu,cpuacct/svc/vguest/l"));
    assert!(plans.iter().all(|p| !p.v2));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn v2_enables_limit_controllers_and_reports_missing_ones() {
    let root = temp("v2");
    let own = root.join("user.slice/app");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
    std::fs::write(own.join("cgroup.subtree_control"), "").unwrap();
    let hier = Hierarchies::parse(&v2_mountinfo(&root));
    let plans = place(&hier, "0::/user.slice/app\n", &wanted(&[Controller::Memory]), None, "l").unwrap();
    assert_eq!(plans.len(), 1);
    let p = &plans[0];
    assert_eq!(p.dir(), root.join("user.slice/app/vguest/l"));
    // The limit forces a subtree_control write, so the accounting
    // controllers come along.
    assert_eq!(p.enable, ["memory", "pids"]);
    assert_eq!(p.serves, [Controller::Memory, Controller::Cpuacct, Controller::Freezer, Controller::Pids]);

    // Without limits nothing is written to the caller's group, and
    // controllers it does not already delegate are left out.
    let plans = place(&hier, "0::/user.slice/app\n", &wanted(&[]), None, "l").unwrap();
    assert!(plans[0].enable.is_empty());
    std::fs::write(own.join("cgroup.subtree_control"), "pids\n").unwrap();
    let plans = place(&hier, "0::/user.slice/app\n", &wanted(&[]), None, "l").unwrap();
    assert_eq!(plans[0].enable, ["pids"]);

    // cpuset is not delegated: a typed error naming it.
    let err = place(&hier, "0::/user.slice/app\n", &wanted(&[Controller::Cpuset]), None, "l").unwrap_err();
    match err {
        ResourceError::MissingController { controller, layout, reason } => {
            assert_eq!(controller, "cpuset");
            assert_eq!(layout, CgroupLayout::V2);
            assert!(reason.contains("does not delegate"), "{reason}");
        }
        other => panic!("{other}"),
    }
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn foreign_namespace_and_bad_parents_are_refused() {
    let root = temp("ns");
    let hier = Hierarchies::parse(&v1_mountinfo(&root));
    let own = "3:memory:/../outside\n6:pids:/\n4:freezer:/\n1:cpu,cpuacct:/\n";
    let err = place(&hier, own, &wanted(&[]), None, "l").unwrap_err();
    assert!(matches!(err, ResourceError::Placement { ref hierarchy, .. } if hierarchy == "memory"), "{err}");
    for bad in ["/", "", "a/../b", "./a"] {
        let err = place(&hier, own, &wanted(&[]), Some(Path::new(bad)), "l").unwrap_err();
        assert!(matches!(err, ResourceError::InvalidParent { .. }), "{bad:?}: {err}");
    }
    // A mount whose root is a subgroup (bind mount, cgroup namespace).
    let text = format!("32 31 0:29 /lxc/c1 {}/pids rw - cgroup cgroup rw,pids\n", root.display());
    let hier = Hierarchies::parse(&text);
    let plans = place(&hier, "1:pids:/lxc/c1/app\n", &wanted(&[Controller::Pids]), None, "l").unwrap();
    assert_eq!(plans[0].dir(), root.join("pids/app/vguest/l"));
    std::fs::remove_dir_all(root).unwrap();
}
