//! README.md's walk-through, run as written: its `sh` and `python` blocks are extracted from the
//! README itself (so the two cannot drift), run in order in one bash session in a fresh
//! directory, and each block's output must contain every `# => ...` line written under its
//! commands. Blocks after a `<!-- not run by tests/readme.rs ... -->` line are skipped (installing
//! the binary: the test puts the one it was built with on `PATH` instead).

// postgres-rerun: no (it walks the README's quick start, which runs on the embedded SQLite default)
mod support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::wait_bounded;
use test_support::workspace_root;

/// The whole walk-through's bound: PyKMIP and the service start, a few KMIP round trips.
const WALK_LIMIT: Duration = Duration::from_secs(240);
const SKIP_MARK: &str = "<!-- not run by tests/readme.rs";
const EXPECT: &str = "# => ";

#[derive(Debug)]
struct Block {
    language: String,
    code: String,
}

/// The runnable blocks of the section "## Walk-through...", in order.
fn walk_through(readme: &str) -> Vec<Block> {
    let start = readme
        .find("## Walk-through")
        .expect("a walk-through section");
    let section = &readme[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let mut blocks = Vec::new();
    let mut lines = section[..end].lines();
    let mut skip_next = false;
    while let Some(line) = lines.next() {
        if line.starts_with(SKIP_MARK) {
            skip_next = true;
            continue;
        }
        let Some(language) = line.strip_prefix("```").filter(|l| !l.is_empty()) else {
            continue;
        };
        let code: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        if !std::mem::take(&mut skip_next) && matches!(language, "sh" | "python") {
            blocks.push(Block {
                language: language.to_string(),
                code: code.join("\n"),
            });
        }
    }
    blocks
}

/// One bash script running every block, each announced by a marker line.
fn script(blocks: &[Block], dir: &Path) -> String {
    let mut script = String::new();
    for (index, block) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '@@ block {index} @@'\n"));
        match block.language.as_str() {
            "python" => {
                let file = dir.join(format!("block-{index}.py"));
                std::fs::write(&file, &block.code).expect("python block");
                script.push_str(&format!(".venv/bin/python {} 2>&1\n", file.display()));
            }
            _ => script.push_str(&format!("{{\n{}\n}} 2>&1\n", block.code)),
        }
    }
    script
}

#[test]
fn the_readme_walk_through_works_as_written() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let blocks = walk_through(&readme);
    assert!(
        blocks.len() >= 6,
        "the walk-through has its blocks: {blocks:?}"
    );

    // A fresh directory that looks like the top of the repository.
    let dir = tempfile::tempdir().expect("dir");
    for shared in ["scripts", ".venv"] {
        std::os::unix::fs::symlink(root.join(shared), dir.path().join(shared)).expect("link");
    }
    let script_path = dir.path().join("walk-through.sh");
    std::fs::write(&script_path, script(&blocks, dir.path())).expect("script");
    let binary_dir = Path::new(env!("CARGO_BIN_EXE_ontap-keymgr"))
        .parent()
        .expect("binary dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        binary_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = dir.path().join("walk-through.log");
    let mut command = Command::new("bash");
    command
        .arg(&script_path)
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("KEYMGR_ADMIN_PASSWORD")
        .env_remove("KEYMGR_CONFIG")
        .env_remove("KEYMGR_DATA_DIR")
        .env_remove("KEYMGR_LISTEN")
        .stdin(Stdio::null())
        .stdout(support::log_file(&log))
        .stderr(support::log_file(&log))
        // Its own process group, so that whatever it leaves running is stopped with it.
        .process_group(0);
    let mut child = command.spawn().expect("bash");
    let finished = wait_bounded(&mut child, WALK_LIMIT);
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .status();
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        finished.is_some(),
        "still running after {WALK_LIMIT:?}:\n{output}"
    );

    let segments: Vec<&str> = output.split("@@ block ").skip(1).collect();
    assert_eq!(segments.len(), blocks.len(), "every block ran:\n{output}");
    for (block, segment) in blocks.iter().zip(&segments) {
        assert!(!segment.contains("command not found"), "{segment}");
        for line in block.code.lines() {
            let Some(expected) = line.trim_start().strip_prefix(EXPECT) else {
                continue;
            };
            assert!(
                segment.contains(expected),
                "promised \"{expected}\", got:\n{segment}\n--- block:\n{}",
                block.code
            );
        }
    }
}

#[test]
fn the_kmip_server_script_says_plainly_that_its_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let dir = tempfile::tempdir().expect("dir");
    let pki = test_support::pki::TestPki::new();
    let output = test_support::pykmip::server_command(dir.path(), &pki.server, &pki.ca, port)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/kmip_server.py");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("port {port} is in use")),
        "{stderr}"
    );
    assert!(!stderr.contains("Traceback"), "{stderr}");
}
