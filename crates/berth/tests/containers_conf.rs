//! The containers configuration podman users already have, honoured
//! against real registries on loopback: `certs.d` for a TLS registry with a
//! private CA, a credential helper named in `auth.json`, `registries.conf`
//! short names, a mirror and an insecure registry, and a `policy.json`
//! reject. The registries listen on 127.0.0.2 and 127.0.0.3, which berth
//! does not take for plain-HTTP loopback names.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;

const T: &str = "containers_configuration_is_honoured";

struct Stop(Child);
impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A registry on `addr`, with TLS and htpasswd auth if given.
fn registry(
    dir: &Path,
    addr: &str,
    tls: Option<(&Path, &Path)>,
    user: Option<(&str, &str)>,
) -> Stop {
    Stop(serve_registry(dir, addr, tls, user))
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn containers_configuration_is_honoured() {
    for t in ["docker-registry", "htpasswd", "openssl"] {
        if !have_tool(T, t) {
            return;
        }
    }
    let env = Env::new();
    let d = env.dir.path();
    // A private CA and a certificate for 127.0.0.2.
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.2",
            "-keyout",
            "tls.key",
            "-out",
            "tls.csr",
        ],
    );
    std::fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.2\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "tls.crt",
        ],
    );
    let (p1, p2) = (free_port(), free_port());
    let secure = format!("127.0.0.2:{p1}");
    let plain = format!("127.0.0.3:{p2}");
    let _r1 = registry(
        d,
        &secure,
        Some((&d.join("tls.crt"), &d.join("tls.key"))),
        Some(("alice", "s3cret")),
    );
    let _r2 = registry(d, &plain, None, None);

    let conf = env.path("config");
    let containers = conf.join("containers");
    std::fs::create_dir_all(&containers).unwrap();
    let bin = env.path("helpers");
    std::fs::create_dir_all(&bin).unwrap();
    let berth = |args: &[&str]| {
        let mut c = env.cmd();
        c.args(args)
            .env("XDG_CONFIG_HOME", &conf)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("CONTAINERS_REGISTRIES_CONF")
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .stdin(Stdio::null());
        c.output().unwrap()
    };
    let ok = |args: &[&str]| {
        let o = berth(args);
        assert!(
            o.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let fails = |args: &[&str]| {
        let o = berth(args);
        assert!(!o.status.success(), "berth {args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    busybox_image(&env, "apps/hello:1", vec![file("etc/hello", b"hello\n")]);

    // TLS with a private CA: refused until certs.d has the CA.
    let to_secure = format!("{secure}/apps/hello:1");
    let err = fails(&["push", "apps/hello:1", &to_secure]);
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("tls"),
        "{err}"
    );
    let certs = containers.join(format!("certs.d/{secure}"));
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(d.join("ca.crt"), certs.join("ca.crt")).unwrap();
    // Trusted now, but the registry wants credentials: a credential helper
    // named in auth.json gives them.
    let err = fails(&["push", "apps/hello:1", &to_secure]);
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );
    let helper = bin.join("docker-credential-berthtest");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread host\n[ \"$1\" = get ] || exit 1\n\
         printf '{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}' \"$host\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        containers.join("auth.json"),
        format!("{{\"auths\":{{}},\"credHelpers\":{{\"{secure}\":\"berthtest\"}}}}"),
    )
    .unwrap();
    ok(&["push", "apps/hello:1", &to_secure]);

    // An insecure registry (plain HTTP, not on a loopback name berth knows):
    // refused until registries.conf says it is insecure.
    let to_plain = format!("{plain}/mirror/hello:1");
    let err = fails(&["push", "apps/hello:1", &to_plain]);
    assert!(!err.is_empty());
    let registries = containers.join("registries.conf");
    std::fs::write(
        &registries,
        format!(
            "unqualified-search-registries = [\"{plain}\", \"{secure}\"]\n\
             [[registry]]\nlocation = \"{plain}\"\ninsecure = true\n\
             [[registry]]\nprefix = \"mirrored.example/apps\"\nlocation = \"{secure}/nowhere\"\n\
             [[registry.mirror]]\nlocation = \"{plain}/mirror\"\ninsecure = true\n\
             [[registry]]\nlocation = \"{secure}/blocked\"\nblocked = true\n"
        ),
    )
    .unwrap();
    ok(&["push", "apps/hello:1", &to_plain]);

    // A short name: the search registries in order (the first lacks it).
    ok(&["rmi", "apps/hello:1"]);
    let out = ok(&["pull", "apps/hello:1"]);
    assert!(out.contains("Pulled apps/hello:1"), "{out}");
    let names = ok(&["images"]);
    assert!(names.contains(&format!("{secure}/apps/hello")), "{names}");
    // A mirror serves a prefix whose location does not have it.
    ok(&["pull", "mirrored.example/apps/hello:1"]);
    assert!(ok(&["images"]).contains("mirrored.example/apps/hello"));
    // Blocked.
    let err = fails(&["pull", &format!("{secure}/blocked/x:1")]);
    assert!(err.contains("blocks"), "{err}");

    // policy.json: a reject for one repository, before any request.
    std::fs::write(
        containers.join("policy.json"),
        format!(
            "{{\"default\":[{{\"type\":\"insecureAcceptAnything\"}}],\
              \"transports\":{{\"docker\":{{\"{secure}/apps\":[{{\"type\":\"reject\"}}]}}}}}}"
        ),
    )
    .unwrap();
    let err = fails(&["pull", &to_secure]);
    assert!(err.contains("policy.json rejects"), "{err}");
    // The mirror's logical name is what the policy judges.
    std::fs::write(
        containers.join("policy.json"),
        "{\"default\":[{\"type\":\"insecureAcceptAnything\"}],\
          \"transports\":{\"docker\":{\"mirrored.example\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\"}]}}}",
    )
    .unwrap();
    let err = fails(&["pull", "mirrored.example/apps/hello:1"]);
    assert!(
        err.contains("signedBy") && err.contains("cannot verify"),
        "{err}"
    );
    // A malformed file is an error that names it, not a silent accept.
    std::fs::write(containers.join("policy.json"), "{").unwrap();
    let err = fails(&["pull", &to_plain]);
    assert!(err.contains("policy.json"), "{err}");
}
