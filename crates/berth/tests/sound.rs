//! Real sound test: Debian's paplay (with its libraries, from the host)
//! plays a tone inside the sandbox into a PulseAudio null sink; the host
//! records the sink's monitor and checks it is not silence. Without
//! socket=pulseaudio the same server cannot be reached.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Pulse {
    child: Child,
    socket: PathBuf,
    runtime: PathBuf,
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_pulse(dir: &Path) -> Pulse {
    let runtime = dir.join("run");
    let home = dir.join("pahome");
    std::fs::create_dir_all(runtime.join("pulse")).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let socket = runtime.join("pulse/native");
    let child = Command::new("pulseaudio")
        .args([
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--use-pid-file=no",
        ])
        .args(["-L", "module-null-sink sink_name=berth_test"])
        .arg("-L")
        .arg(format!(
            "module-native-protocol-unix auth-anonymous=1 socket={}",
            socket.display()
        ))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("HOME", &home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !socket.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "pulseaudio did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Pulse {
        child,
        socket,
        runtime,
    }
}

/// Half a second of a 440 Hz sine, 16-bit mono 44.1 kHz WAV.
fn tone() -> Vec<u8> {
    let rate = 44_100u32;
    let n = rate / 2;
    let mut pcm = Vec::with_capacity(n as usize * 2);
    for i in 0..n {
        let v =
            (f64::from(i) * 440.0 * 2.0 * std::f64::consts::PI / f64::from(rate)).sin() * 12_000.0;
        pcm.extend_from_slice(&(v as i16).to_le_bytes());
    }
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
    w.extend_from_slice(&pcm);
    w
}

/// `berth run ID` against the test's PulseAudio.
fn run_with_pulse(env: &Env, pa: &Pulse, id: &str) -> std::process::Command {
    let mut c = env.cmd();
    c.args(["run", id])
        .env("PULSE_SERVER", format!("unix:{}", pa.socket.display()))
        .env("XDG_RUNTIME_DIR", &pa.runtime);
    c
}

/// Stop a recorder with SIGINT (so it flushes; through berth and the
/// sandbox's init when sandboxed) and return the peak of its s16le stdout
/// and the number of samples.
fn stop_and_measure(mut rec: Child) -> (u16, usize) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(rec.id() as i32).unwrap(),
        rustix::process::Signal::INT,
    );
    let mut raw = Vec::new();
    rec.stdout.take().unwrap().read_to_end(&mut raw).unwrap();
    let _ = rec.wait();
    let peak = raw
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]).unsigned_abs())
        .max()
        .unwrap_or(0);
    (peak, raw.len() / 2)
}

#[test]
fn sound_plays_only_when_granted() {
    for t in ["pulseaudio", "paplay", "parec", "ldd"] {
        if !have_tool("sound_plays_only_when_granted", t) {
            return;
        }
    }
    let env = Env::new();
    let pa = start_pulse(env.dir.path());
    let tone = || vec![file("tone.wav", &tone())];
    install_host_app(
        &env,
        "org.berth.test.Player",
        "/usr/bin/paplay",
        "/usr/bin/paplay /tone.wav",
        "socket=pulseaudio",
        tone(),
    );
    install_host_app(
        &env,
        "org.berth.test.Mute",
        "/usr/bin/paplay",
        "/usr/bin/paplay /tone.wav",
        "",
        tone(),
    );
    let server = format!("unix:{}", pa.socket.display());

    let rec = Command::new("parec")
        // Small fragments, so nothing recorded sits in parec's buffer.
        .args([
            "-d",
            "berth_test.monitor",
            "--format=s16le",
            "--rate=44100",
            "--channels=1",
            "--latency-msec=20",
        ])
        .env("PULSE_SERVER", &server)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let o = run_with_pulse(&env, &pa, "org.berth.test.Player")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "paplay failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    let (peak, samples) = stop_and_measure(rec);
    assert!(
        peak > 3000,
        "the recording is silence (peak {peak} over {samples} samples)"
    );

    let o = run_with_pulse(&env, &pa, "org.berth.test.Mute")
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "paplay played without socket=pulseaudio"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Connection") || err.contains("connect"),
        "{err}"
    );
}

#[test]
fn recording_works_only_when_granted() {
    for t in ["pulseaudio", "paplay", "parec", "ldd"] {
        if !have_tool("recording_works_only_when_granted", t) {
            return;
        }
    }
    let env = Env::new();
    let pa = start_pulse(env.dir.path());
    let server = format!("unix:{}", pa.socket.display());
    let wav = env.write("tone.wav", &tone());
    let record = "/usr/bin/parec -d berth_test.monitor --format=s16le --rate=44100 --channels=1 --latency-msec=20";
    install_host_app(
        &env,
        "org.berth.test.Recorder",
        "/usr/bin/parec",
        record,
        "socket=pulseaudio",
        vec![],
    );
    install_host_app(
        &env,
        "org.berth.test.Deaf",
        "/usr/bin/parec",
        record,
        "",
        vec![],
    );

    // The app records (to its stdout) while the host plays a tone.
    let app = run_with_pulse(&env, &pa, "org.berth.test.Recorder")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let st = Command::new("paplay")
        .arg(&wav)
        .env("PULSE_SERVER", &server)
        .status()
        .unwrap();
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(400));
    let (peak, samples) = stop_and_measure(app);
    assert!(
        peak > 3000,
        "the sandboxed recording is silence (peak {peak} over {samples} samples)"
    );

    let o = run_with_pulse(&env, &pa, "org.berth.test.Deaf")
        .output()
        .unwrap();
    assert!(
        !o.status.success() && o.stdout.is_empty(),
        "recorded without socket=pulseaudio"
    );
}
