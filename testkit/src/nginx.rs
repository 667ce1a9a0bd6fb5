//! A real nginx running the deployed `deploy/nginx.conf` on loopback.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::ports::{free_port, LOOPBACK};
use crate::processes::Processes;

/// The nginx binary: on PATH, or where Debian installs it (`/usr/sbin`,
/// which is not on every PATH).
pub fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nginx"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
        .expect("nginx must be installed (Debian package `nginx`; scripts/test installs it)")
}

/// The deployed configuration, `deploy/nginx.conf` of this workspace.
pub fn deployed_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx.conf")
}

/// `conf` (the deployed `deploy/nginx.conf`) as run on loopback: the
/// `upstream botify` servers become `replicas` (keeping the first server's
/// parameters, such as `max_fails`), `listen 5001` becomes
/// 127.0.0.1:`listen`, and nginx's temp files go to `tmp`. Everything else
/// is the deployed file, line for line.
pub fn loopback_conf(conf: &str, replicas: &[u16], listen: u16, tmp: &Path) -> String {
    let mut out = Vec::new();
    let (mut in_upstream, mut servers, mut listens, mut http) = (false, 0, 0, 0);
    for line in conf.lines() {
        let trimmed = line.trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        if trimmed.starts_with("upstream botify") {
            in_upstream = true;
        } else if in_upstream && trimmed == "}" {
            in_upstream = false;
        }
        if in_upstream && trimmed.starts_with("server ") {
            if servers == 0 {
                let parameters: String = trimmed
                    .trim_end_matches(';')
                    .split_whitespace()
                    .skip(2)
                    .map(|p| format!(" {p}"))
                    .collect();
                for port in replicas {
                    out.push(format!("{indent}server {LOOPBACK}:{port}{parameters};"));
                }
            }
            servers += 1;
        } else if trimmed == "listen 5001;" {
            out.push(format!("{indent}listen {LOOPBACK}:{listen};"));
            listens += 1;
        } else {
            out.push(line.to_string());
            if trimmed == "http {" {
                http += 1;
                for what in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
                    let path = tmp.join(what);
                    out.push(format!("    {what}_temp_path {};", path.display()));
                }
            }
        }
    }
    assert!(
        servers >= 1 && listens == 1 && http == 1,
        "deploy/nginx.conf changed shape: the harness expects one `http {{` block, an \
         `upstream botify {{ server ...; }}` and one `listen 5001;` (found {servers} servers, \
         {listens} listens, {http} http blocks)"
    );
    out.join("\n") + "\n"
}

/// Starts nginx named `nginx` among `processes`, running `deployed` (the
/// path of `deploy/nginx.conf`) on loopback in front of the `replicas`
/// ports, in the foreground with its files in `<processes dir>/nginx`;
/// returns the port it listens on once it accepts connections.
pub fn start_in(processes: &mut Processes, deployed: &Path, replicas: &[u16]) -> u16 {
    let dir = processes.dir().join("nginx");
    fs::create_dir_all(&dir).expect("create nginx's folder");
    let deployed_text = fs::read_to_string(deployed)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", deployed.display()));
    let port = free_port();
    let conf = dir.join("nginx.conf");
    fs::write(&conf, loopback_conf(&deployed_text, replicas, port, &dir))
        .expect("write nginx.conf");
    let nginx = processes.spawn(
        "nginx",
        Command::new(binary())
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr", "-g"])
            .arg(format!(
                "daemon off; pid {};",
                dir.join("nginx.pid").display()
            )),
    );
    nginx.wait_listening(port, Duration::from_secs(10));
    port
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYED: &str = "events {\n}\nhttp {\n    upstream botify {\n        server botify:5001 max_fails=1;\n        keepalive 64;\n    }\n    server {\n        listen 5001;\n    }\n}\n";

    #[test]
    fn only_upstreams_listen_and_temp_paths_change() {
        let conf = loopback_conf(DEPLOYED, &[7001, 7002], 7000, Path::new("/t"));
        assert!(conf.contains("        server 127.0.0.1:7001 max_fails=1;\n        server 127.0.0.1:7002 max_fails=1;\n        keepalive 64;"), "{conf}");
        assert!(conf.contains("        listen 127.0.0.1:7000;\n"), "{conf}");
        assert!(
            conf.contains("http {\n    client_body_temp_path /t/client_body;\n"),
            "{conf}"
        );
        assert!(
            !conf.contains("botify:5001") && !conf.contains("listen 5001"),
            "{conf}"
        );
    }

    #[test]
    #[should_panic(expected = "changed shape")]
    fn an_unexpected_shape_is_refused() {
        loopback_conf("http {\n}\n", &[7001], 7000, Path::new("/t"));
    }

    #[test]
    fn the_deployed_file_has_the_expected_shape() {
        let deployed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx.conf");
        loopback_conf(
            &fs::read_to_string(deployed).unwrap(),
            &[7001],
            7000,
            Path::new("/t"),
        );
    }
}
