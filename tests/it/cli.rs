//! The `switchyard` binary: check-config and serve refuse bad configs with the key named.

use std::process::Command;

fn switchyard(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env("SY_PW", "pw")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const GOOD: &str = "[proxy]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
    [[users]]\nname = \"app\"\npassword = \"${SY_PW}\"\n\
    [backends.local]\nurl = \"postgres://app:topsecret@127.0.0.1:5432/app\"\npool_size = 7\n";

#[test]
fn check_config_prints_the_plan_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = switchyard(&["check-config", &write(&dir, "good.toml", GOOD)]);
    assert!(ok, "{out}");
    assert!(
        out.contains("backend:  local = postgres://app:***@127.0.0.1:5432/app (pool 7"),
        "{out}"
    );
    assert!(out.contains("<- active"), "{out}");
    assert!(!out.contains("topsecret") && !out.contains("pw\n"), "{out}");
}

#[test]
fn check_config_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (GOOD.replace("pool_size = 7", "pool_sise = 7"), "pool_sise"),
        (
            GOOD.replace("postgres://app:topsecret@127.0.0.1:5432/app", "mysql://x"),
            "backends.local.url",
        ),
        (
            GOOD.replace("${SY_PW}", "${SY_MISSING}"),
            "users[0].password",
        ),
        (
            GOOD.replace("pool_size = 7", "pool_size = 0"),
            "backends.local.pool_size",
        ),
        (
            format!("{GOOD}sslmode = \"sometimes\"\n"),
            "backends.local.sslmode",
        ),
        (
            GOOD.replace(
                "[admin]\nlisten = \"127.0.0.1:0\"",
                "[admin]\nlisten = \"0.0.0.0:9640\"",
            ),
            "admin.token",
        ),
        ("[proxy\n".to_string(), "TOML"),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let (ok, out) = switchyard(&["check-config", &write(&dir, &format!("bad{i}.toml"), text)]);
        assert!(!ok, "case {i} should fail");
        assert!(out.contains(key), "case {i}: expected {key:?} in {out}");
        assert!(!out.contains("topsecret"), "{out}");
    }
}

#[test]
fn serve_refuses_a_port_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = GOOD.replace(
        "listen = \"127.0.0.1:0\"\n[admin]",
        &format!("listen = \"127.0.0.1:{port}\"\n[admin]"),
    );
    let (ok, out) = switchyard(&["serve", "--config", &write(&dir, "c.toml", &cfg)]);
    assert!(!ok);
    assert!(
        out.contains("proxy.listen") && out.contains(&port.to_string()),
        "{out}"
    );
    // check-config only notes it: a running switchyard holds its own ports, and an
    // edited config must be checkable while it serves.
    let (ok, out) = switchyard(&["check-config", &write(&dir, "c.toml", &cfg)]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "note: proxy.listen 127.0.0.1:{port} is in use now"
        )),
        "{out}"
    );
}

#[test]
fn the_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/switchyard.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check-config", path])
        .env("APP_DB_PASSWORD", "a")
        .env("LOCAL_DB_PASSWORD", "b")
        .env("SUPABASE_REF", "ref")
        .env("SUPABASE_PASSWORD", "c")
        .env("SUPABASE_REGION", "us-east-1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("supabase = postgres://postgres.ref:***@"),
        "{text}"
    );
}

/// The Kubernetes example's config (a fleet: name and member from the Deployment) is
/// accepted; the same fleet over a SQLite backend is refused, naming it.
#[test]
fn the_kubernetes_fleet_config_is_valid_and_sqlite_fleets_are_refused() {
    let manifest = include_str!("../../deploy/kubernetes/configmap.yaml");
    let doc: Vec<&str> = manifest
        .split("switchyard.toml: |\n")
        .nth(1)
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let text = doc.join("\n").replace(
        "/var/lib/switchyard/",
        &format!("{}/", dir.path().display()),
    );
    let cfg = write(&dir, "switchyard.toml", &text);
    let run = |path: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["check-config", path])
            .envs([
                ("APP_DB_PASSWORD", "a"),
                ("LOCAL_DB_PASSWORD", "b"),
                ("SUPABASE_REF", "ref"),
                ("SUPABASE_PASSWORD", "c"),
                ("SUPABASE_REGION", "us-east-1"),
                ("SWITCHYARD_ADMIN_TOKEN", "t"),
                ("FLEET_NAME", "app"),
                ("POD_NAME", "app-7d9f-x2x"),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, out) = run(&cfg);
    assert!(ok, "{out}");
    let sqlite = text.replace(
        "postgres://app:${LOCAL_DB_PASSWORD}@postgres.default.svc.cluster.local:5432/app",
        "sqlite://app.db",
    );
    let cfg = write(&dir, "sqlite.toml", &sqlite);
    let (ok, out) = run(&cfg);
    assert!(!ok, "{out}");
    assert!(out.contains("SQLite backends (local)"), "{out}");
}

/// `switchyard init` asked interactively (answers on stdin) writes a config that
/// check-config accepts; wrong answers are refused with the reason, writing nothing.
#[test]
fn init_interactive_writes_a_config_check_config_accepts() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let run = |answers: &str, extra: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("init")
            .args(extra)
            .current_dir(dir.path())
            .env("SWITCHYARD_LISTEN", "127.0.0.1:0")
            .env("SWITCHYARD_ADMIN_LISTEN", "127.0.0.1:0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // init may refuse (and exit) before reading its answers; a broken pipe is fine.
        let written = child.stdin.take().unwrap().write_all(answers.as_bytes());
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    // The app's SQLite file (an empty file is an empty database).
    std::fs::write(dir.path().join("app.db"), b"").unwrap();
    // A Supabase pooler URL without the project ref in the user name.
    let (ok, text) = run(
        "sqlite://./app.db\npostgres://postgres:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres\n",
        &[],
    );
    assert!(!ok && text.contains("postgres.PROJECTREF"), "{text}");
    assert!(!dir.path().join("switchyard.toml").exists());
    // The local SQLite file only (no hosted database yet): both questions answered.
    let (ok, text) = run("sqlite://./app.db\n\n", &[]);
    assert!(ok, "{text}");
    assert!(text.contains("Your app's database today"), "{text}");
    let cfg = dir.path().join("switchyard.toml");
    let (ok, checked) = switchyard(&["check-config", cfg.to_str().unwrap()]);
    assert!(ok, "{checked}");
    // The relative path is shown as serve takes it: from the config file's directory.
    let shown = format!("local = sqlite://{}/./app.db", dir.path().display());
    assert!(checked.contains(&shown), "{checked}");
    // Not overwritten without --force.
    let (ok, text) = run("\n\n", &[]);
    assert!(!ok && text.contains("--force"), "{text}");
}

/// Logs to a file or a pipe carry no colour codes; `--log-format json` (or `[log] format`)
/// writes one JSON object per line.
#[test]
fn logs_to_a_file_have_no_escape_bytes_and_json_lines_parse() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra_cfg: &str, args: &[&str]| -> String {
        let (port, admin) = (
            crate::support::cluster::free_port(),
            crate::support::cluster::free_port(),
        );
        let cfg = write(
            &dir,
            "log.toml",
            &format!(
                "[proxy]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
                 [backends.local]\nurl = \"{}\"\n{extra_cfg}",
                crate::support::sqlite_url(&dir.path().join("app.db"))
            ),
        );
        let log = dir.path().join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--config", &cfg])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut child = crate::support::KillOnDrop(child);
        assert!(crate::support::cluster::wait_until(
            std::time::Duration::from_secs(10),
            || std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("switchyard is listening")
        ));
        let _ = child.kill();
        let _ = child.wait();
        std::fs::read_to_string(&log).unwrap()
    };
    let text = run("", &[]);
    assert!(!text.contains('\x1b'), "{text:?}");
    for (cfg, args) in [
        ("", &["--log-format", "json"][..]),
        ("[log]\nformat = \"json\"\n", &[][..]),
    ] {
        let json = run(cfg, args);
        let line = json
            .lines()
            .find(|l| l.contains("switchyard is listening"))
            .unwrap_or_else(|| panic!("{json}"));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["level"], "INFO", "{v}");
        assert_eq!(v["fields"]["message"], "switchyard is listening", "{v}");
    }
}

fn in_dir(cwd: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .current_dir(cwd)
        .env("SY_PW", "pw")
        .env("SWITCHYARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHYARD_ADMIN_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

const SQLITE: &str = "[proxy]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
    [backends.local]\nurl = \"sqlite://./FILE\"\n";

/// A configured SQLite file that is not there is refused by init, check-config and serve,
/// naming the full path, and none of them makes an empty one.
#[test]
fn a_missing_sqlite_file_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(&dir, "c.toml", &SQLITE.replace("FILE", "nope.db"));
    let missing = dir.path().join("./nope.db");
    for args in [vec!["check-config", &cfg], vec!["serve", "--config", &cfg]] {
        let (ok, out) = in_dir(dir.path(), &args);
        assert!(!ok, "{args:?}: {out}");
        assert!(
            out.contains("does not exist") && out.contains(&missing.display().to_string()),
            "{args:?}: {out}"
        );
        assert!(out.contains("backends.local.url"), "{args:?}: {out}");
    }
    let (ok, out) = in_dir(
        dir.path(),
        &[
            "init",
            "--non-interactive",
            "--local",
            "sqlite://./nope.db",
            "-o",
            "new.toml",
        ],
    );
    assert!(!ok && out.contains("does not exist"), "{out}");
    assert!(
        !dir.path().join("nope.db").exists(),
        "no empty database was made"
    );
    assert!(!dir.path().join("new.toml").exists());
}

/// A relative SQLite path is taken from the config file's directory wherever switchyard
/// is started, and check-config leaves the file as it was (no WAL switch, no -wal/-shm
/// files, no catalog tables) and binds no port.
#[test]
fn relative_sqlite_paths_follow_the_config_file_and_check_config_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data.db");
    std::fs::write(&db, b"").unwrap();
    let cfg = write(&dir, "c.toml", &SQLITE.replace("FILE", "data.db"));
    let elsewhere = tempfile::tempdir().unwrap();
    let (ok, out) = in_dir(elsewhere.path(), &["check-config", &cfg]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("sqlite://{}/./data.db", dir.path().display())),
        "{out}"
    );
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["c.toml", "data.db"], "check-config made files");
    assert_eq!(
        std::fs::metadata(&db).unwrap().len(),
        0,
        "check-config wrote to the file"
    );
    assert!(!elsewhere.path().join("data.db").exists());
}

/// check-config shows each URL with its options, the password masked.
#[test]
fn check_config_shows_url_options_with_the_password_masked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = GOOD.replace(
        "5432/app\"",
        "5432/app?sslmode=require&application_name=shop\"",
    );
    let (ok, out) = switchyard(&["check-config", &write(&dir, "c.toml", &cfg)]);
    assert!(ok, "{out}");
    assert!(
        out.contains("postgres://app:***@127.0.0.1:5432/app?sslmode=require&application_name=shop"),
        "{out}"
    );
    assert!(!out.contains("topsecret"), "{out}");
}

/// `ctl -c FILE` reads the admin address and token only: it works in a shell where the
/// backends' passwords are not set, and `serve` reads those from the config's env_file.
#[test]
fn ctl_needs_only_the_admin_section_and_serve_reads_the_env_file() {
    use crate::support::cluster::free_port;
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let db = crate::support::sqlite_url(&dir.path().join("app.db"));
    write(
        &dir,
        "sy.env",
        "# from init\nSY_ADMIN_TOKEN='t0ken'\nSY_HOSTED_PW='p%40ss'\n",
    );
    let cfg = write(
        &dir,
        "sy.toml",
        &format!(
            "env_file = \"sy.env\"\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"${{SY_ADMIN_TOKEN}}\"\n\
             [backends.local]\nurl = \"{db}\"\n\
             [backends.hosted]\nurl = \"postgres://u:${{SY_HOSTED_PW}}@127.0.0.1:1/db\"\npooler = \"none\"\n\
             [routing]\nactive = \"local\"\n"
        ),
    );
    let _server = crate::support::serve(std::path::Path::new(&cfg), port);
    let ctl = |args: &[&str], cfg: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["ctl", "-c", cfg])
            .args(args)
            .env_remove("SWITCHYARD_ADMIN_URL")
            .env_remove("SWITCHYARD_ADMIN_TOKEN")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, out) = ctl(&["status"], &cfg);
    assert!(ok, "{out}");
    assert!(out.contains("active: local"), "{out}");
    // Without the env file, the hosted password is missing: serve and check-config
    // refuse, ctl does not care (its token is written out here).
    let bare = write(
        &dir,
        "bare.toml",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"t0ken\"\n\
             [backends.local]\nurl = \"{db}\"\n\
             [backends.hosted]\nurl = \"postgres://u:${{SY_NOT_SET_ANYWHERE}}@127.0.0.1:1/db\"\n\
             [routing]\nactive = \"local\"\n"
        ),
    );
    let (ok, out) = switchyard(&["check-config", &bare]);
    assert!(
        !ok && out.contains("SY_NOT_SET_ANYWHERE is not set"),
        "{out}"
    );
    let (ok, out) = ctl(&["status"], &bare);
    assert!(ok, "{out}");
    // A missing env file is named, with what it is for.
    let lost = write(&dir, "lost.toml", "env_file = \"gone.env\"\n");
    let (ok, out) = switchyard(&["check-config", &lost]);
    assert!(
        !ok && out.contains("gone.env") && out.contains("passwords"),
        "{out}"
    );
}

/// The connection URL `serve` prints works as printed, with psql (and is postgresql://,
/// which SQLAlchemy also takes).
#[test]
fn the_url_serve_prints_works_as_printed() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (
        crate::support::cluster::free_port(),
        crate::support::cluster::free_port(),
    );
    let db = crate::support::sqlite_url(&dir.path().join("app.db"));
    let cfg = write(
        &dir,
        "sy.toml",
        &format!(
            "[proxy]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
             [backends.local]\nurl = \"{db}\"\n"
        ),
    );
    let mut child = crate::support::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "-c", &cfg])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.stdout.take().unwrap();
    let line = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("connect with:"))
        .expect("serve prints how to connect");
    let url = line.split('"').nth(1).unwrap_or_else(|| panic!("{line}"));
    assert!(url.starts_with("postgresql://"), "{line}");
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", url, "-c", "SELECT 40 + 2"])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap();
    assert!(out.status.success(), "{line}: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
}
