//! PgBouncer in transaction mode in front of a test cluster: the stand-in for a hosted
//! transaction pooler such as Supabase's port 6543.

use std::process::{Child, Stdio};
use std::time::Duration;

use super::cluster::{PgCluster, free_port, scratch_dir, server_cmd, wait_until};

pub struct Bouncer {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    /// Starts PgBouncer with `pool_mode = transaction` and `pool_size` server connections.
    pub fn start(pg: &PgCluster, pool_mode: &str, pool_size: u32) -> Bouncer {
        let dir = scratch_dir("sy-bouncer-");
        let port = free_port();
        let users = dir.path().join("users.txt");
        std::fs::write(&users, "\"app\" \"secret\"\n\"postgres\" \"\"\n").unwrap();
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port={pg}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
             unix_socket_dir = {dir}\nauth_type = plain\nauth_file = {users}\npool_mode = {pool_mode}\n\
             default_pool_size = {pool_size}\nmax_client_conn = 2000\nignore_startup_parameters = extra_float_digits,options\n\
             server_reset_query = DISCARD ALL\nlogfile = {dir}/pgbouncer.log\nverbose = 0\n",
            pg = pg.port,
            dir = dir.path().display(),
            users = users.display(),
        );
        let ini_path = dir.path().join("pgbouncer.ini");
        std::fs::write(&ini_path, ini).unwrap();
        let _ = std::process::Command::new("chown")
            .arg("-R")
            .arg("postgres")
            .arg(dir.path())
            .status();
        let child = server_cmd("pgbouncer")
            .arg(&ini_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer is installed (apt-get install pgbouncer)");
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up,
            "pgbouncer did not start: {}",
            std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default()
        );
        Bouncer {
            port,
            child,
            _dir: dir,
        }
    }

    /// A backend URL through PgBouncer.
    pub fn url(&self) -> String {
        format!(
            "postgres://app:secret@127.0.0.1:{}/app?sslmode=disable",
            self.port
        )
    }
}

impl Bouncer {
    /// Sends a signal to PgBouncer (`STOP` freezes it, `CONT` thaws it).
    pub fn signal(&self, sig: &str) {
        std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
