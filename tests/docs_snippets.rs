//! The server snippets in the README are the files under `docs/` verbatim: the files are what
//! `integration/test_server_snippets.py` runs on real Prosody and ejabberd, so a README block
//! that drifts from them would show admins untested text.
//!
//! A README block is tied to its file by the HTML comment `<!-- snippet: docs/FILE -->` on the
//! line before its opening fence.

use std::path::Path;

const MARKER: &str = "<!-- snippet: ";

/// Every snippet file that must appear in the README.
const FILES: &[&str] = &["docs/prosody.cfg.lua", "docs/ejabberd.yml"];

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (file named by the marker, README line of the marker, the block's text with a final newline).
fn marked_blocks(readme: &str) -> Vec<(String, usize, String)> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(rest) = line.strip_prefix(MARKER) {
            let file = rest
                .strip_suffix("-->")
                .unwrap_or_else(|| panic!("README.md:{}: unterminated snippet marker", i + 1))
                .trim()
                .to_string();
            let fence = lines.get(i + 1).copied().unwrap_or("");
            assert!(
                fence.starts_with("```"),
                "README.md:{}: the line after the marker for {file} must open a code block, found {fence:?}",
                i + 2
            );
            let mut body = String::new();
            let mut j = i + 2;
            loop {
                let l = lines.get(j).unwrap_or_else(|| {
                    panic!("README.md:{}: code block for {file} never closed", i + 2)
                });
                if l.starts_with("```") {
                    break;
                }
                body.push_str(l);
                body.push('\n');
                j += 1;
            }
            out.push((file, i + 1, body));
            i = j;
        }
        i += 1;
    }
    out
}

/// The first line where two texts differ, for a readable failure.
fn first_difference(a: &str, b: &str) -> String {
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    for n in 0..al.len().max(bl.len()) {
        let (x, y) = (al.get(n), bl.get(n));
        if x != y {
            return format!(
                "line {} of the block: README has {:?}, the file has {:?}",
                n + 1,
                x.copied().unwrap_or("<end>"),
                y.copied().unwrap_or("<end>")
            );
        }
    }
    "only the final newline differs".into()
}

#[test]
fn readme_server_blocks_are_the_snippet_files_verbatim() {
    let readme = read("README.md");
    let blocks = marked_blocks(&readme);
    for file in FILES {
        let found: Vec<_> = blocks.iter().filter(|(f, _, _)| f == file).collect();
        assert!(
            !found.is_empty(),
            "README.md has no block marked `{MARKER}{file} -->`"
        );
        let text = read(file);
        for (_, line, body) in found {
            assert!(
                *body == text,
                "README.md:{line}: the block differs from {file} ({}); copy the file into the README",
                first_difference(body, &text)
            );
        }
    }
    for (file, line, _) in &blocks {
        assert!(
            FILES.contains(&file.as_str()),
            "README.md:{line}: marker names {file}, which this test does not know"
        );
    }
}

/// Prosody reads a listener option only from the global section: in the snippet, no global
/// option may come after the first `Component`/`VirtualHost` line (the pitfall it warns about).
#[test]
fn prosody_snippet_keeps_global_options_above_the_host_lines() {
    let text = read("docs/prosody.cfg.lua");
    let mut in_host = None;
    for (n, line) in text.lines().enumerate() {
        let code = line.split("--").next().unwrap_or("").trim();
        if code.starts_with("Component ") || code.starts_with("VirtualHost ") {
            in_host = Some(n + 1);
            continue;
        }
        let global = [
            "component_ports",
            "component_interfaces",
            "modules_disabled",
        ];
        if let (Some(host_line), Some(opt)) =
            (in_host, global.iter().find(|o| code.starts_with(*o)))
        {
            panic!(
                "docs/prosody.cfg.lua:{}: {opt} is below the host line {host_line}, so Prosody ignores it",
                n + 1
            );
        }
    }
    assert!(
        in_host.is_some(),
        "docs/prosody.cfg.lua has no Component line"
    );
}

#[test]
fn marker_parser_reads_blocks_and_their_lines() {
    let readme = "x\n<!-- snippet: docs/a -->\n```lua\none\n\ntwo\n```\n";
    assert_eq!(
        marked_blocks(readme),
        vec![("docs/a".to_string(), 2, "one\n\ntwo\n".to_string())]
    );
    assert_eq!(
        first_difference("a\nb\n", "a\nc\n"),
        "line 2 of the block: README has \"b\", the file has \"c\""
    );
}
