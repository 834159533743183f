//! The front door (`berth`) launches by itself and hands every other
//! command, `berth run`'s help and errors included, to the full command
//! line (`berth-cli`); a launch is planned as data before anything runs.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::*;

fn cli_bin() -> PathBuf {
    berth_bin().with_file_name("berth-cli")
}

#[test]
fn the_front_door_launches_and_passes_the_rest_on() {
    let env = Env::new();
    busybox_image(&env, "bb:1", vec![]);
    let gone = env.path("nowhere/berth-cli");
    // A launch needs only the front door.
    let o = env
        .cmd()
        .env("BERTH_CLI", &gone)
        .args(["run", "bb:1", "--", "/bin/echo", "hi"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");
    // Anything else needs berth-cli, and says so in one line when it is
    // not there.
    let o = env
        .cmd()
        .env("BERTH_CLI", &gone)
        .args(["images"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("berth: error: cannot start "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // Passed on whole: arguments, output, exit codes.
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["images", "--json"])).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    let o = env.run(&["run", "--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("--print-plan"));
    let o = env.run(&["run"]);
    assert_eq!(o.status.code(), Some(2), "a usage error is clap's");
    let err = env.fails(&["run", "bb:2"]);
    assert!(err.contains("did you mean"), "{err}");
    let o = env
        .cmd()
        .args(["run", "bb:1", "--", "/bin/sh", "-c", "exit 7"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(7));
    // `--home` before the command still launches.
    let o = env
        .cmd()
        .env("BERTH_CLI", &gone)
        .env_remove("BERTH_HOME")
        .arg("--home")
        .arg(env.home())
        .args(["run", "bb:1", "--", "/bin/echo", "home"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_launch_plan_is_printed_whole_and_changes_nothing() {
    let env = Env::new();
    let home = env.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let id = "org.example.Planned";
    let img = busybox_img(
        "test/planned:1",
        vec![],
        &[
            ("org.berth.app.id", id),
            ("org.berth.app.command", "/bin/sh"),
            (
                "org.berth.app.permissions",
                "filesystem=~/made-by-launch:create",
            ),
        ],
    );
    let p = env.write("planned.tar", &img.oci_archive());
    let o = env
        .cmd()
        .env("HOME", &home)
        .args(["install", "--yes", p.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let plan = |program: &PathBuf| -> serde_json::Value {
        let o = env
            .cmd_raw(program.to_str().unwrap())
            .env("HOME", &home)
            .args(["run", "--print-plan", id])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // One instance ID per plan: the rest must be the same.
        let text = serde_json::to_string(&v)
            .unwrap()
            .replace(v["instance_id"].as_str().unwrap(), "ID");
        serde_json::from_str(&text).unwrap()
    };
    let v = plan(&berth_bin());
    assert_eq!(v, plan(&cli_bin()), "the two front ends plan alike");
    assert_eq!(v["app"], id);
    assert!(v["image_digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v["namespaces"]["user"], true);
    let made = home.join("made-by-launch");
    let data = env.home().join("data").join(id);
    let steps = v["host_steps"].as_array().unwrap();
    for dir in [&made, &data] {
        assert!(
            steps
                .iter()
                .any(|s| s["step"] == "create-dir" && s["path"] == dir.to_str().unwrap()),
            "no step creates {}: {steps:?}",
            dir.display()
        );
    }
    // Planning wrote nothing: no directory, no instance, no pin.
    assert!(!made.exists() && !data.exists());
    let instances = env.runtime_dir().join("instances");
    assert_eq!(std::fs::read_dir(&instances).unwrap().count(), 0);
    let pins = std::fs::read_dir(env.home().join("roots"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(pins, 0);

    // The launch takes the steps: the grant's directory exists and is the
    // app's to write.
    let o = env
        .cmd()
        .env("HOME", &home)
        .args(["run", id, "--", "-c", "echo hi > ~/made-by-launch/x"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(made.join("x")).unwrap(), "hi\n");
    assert!(data.is_dir());
    assert_eq!(
        std::fs::read_dir(&instances).unwrap().count(),
        0,
        "cleaned up"
    );
}

/// berth's configuration directory is masked from the first launch on,
/// also when the home or `~/.config` is reached through a symlink (as on
/// Fedora Silverblue); a home berth cannot write to does not stop a launch.
#[test]
fn the_config_dir_is_masked_through_symlinks_and_optional() {
    let env = Env::new();
    let real = env.path("var/home/u");
    std::fs::create_dir_all(real.join("dotfiles/config")).unwrap();
    std::os::unix::fs::symlink("dotfiles/config", real.join(".config")).unwrap();
    std::os::unix::fs::symlink("var/home", env.path("home")).unwrap();
    let home = env.path("home/u");
    let id = "org.example.Home";
    let img = busybox_img(
        "test/home:1",
        vec![],
        &[
            ("org.berth.app.id", id),
            ("org.berth.app.command", "/bin/sh -c"),
            ("org.berth.app.permissions", "filesystem=home"),
        ],
    );
    let p = env.write("home.tar", &img.oci_archive());
    let o = env
        .cmd()
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .args(["install", "--yes", p.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(real.join("dotfiles/config/berth"));
    let o = env
        .cmd()
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .args([
            "run",
            id,
            "--",
            "echo evil > ~/.config/berth/policy.toml && echo WROTE; ls -a ~/.config/berth",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Read-only file system")
            || String::from_utf8_lossy(&o.stderr).contains("Read-only file system"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.contains("WROTE"), "{out}");
    assert!(!real.join("dotfiles/config/berth/policy.toml").exists());

    // An image, with a home that cannot be written: the launch goes on.
    busybox_image(&env, "bb:1", vec![]);
    let ro = env.path("ro-home");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    if !is_root() {
        let o = env
            .cmd()
            .env("HOME", &ro)
            .env_remove("XDG_CONFIG_HOME")
            .args(["run", "bb:1", "--", "/bin/echo", "hi"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");
    }
    // A home that is a file: nothing can be made in it, even by root.
    let file_home = env.write("file-home", b"");
    let o = env
        .cmd()
        .env("HOME", &file_home)
        .env_remove("XDG_CONFIG_HOME")
        .args(["run", "bb:1", "--", "/bin/echo", "hi"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `--print-plan` shows what it prints escaped (image text: commands,
/// env, labels in notes), from either front end: JSON leaves C1 controls,
/// DEL and bidi overrides raw.
#[test]
fn printed_plans_are_escaped() {
    let env = Env::new();
    busybox_image(&env, "bb:1", vec![]);
    for program in [berth_bin(), cli_bin()] {
        let o = env
            .cmd_raw(program.to_str().unwrap())
            .args([
                "run",
                "--print-plan",
                "bb:1",
                "--",
                "/bin/sh\u{202e}\u{9b}31mEVIL\u{7f}",
            ])
            .output()
            .unwrap();
        assert!(o.status.success());
        let out = String::from_utf8_lossy(&o.stdout);
        for raw in ['\u{202e}', '\u{9b}', '\u{7f}'] {
            assert!(
                !out.contains(raw),
                "{} printed {raw:?} raw",
                program.display()
            );
        }
        assert!(out.to_lowercase().contains("\\u202e"), "{out}");
    }
}
