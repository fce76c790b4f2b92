//! The README can be followed literally: every ```sh block, top to bottom,
//! runs against a fresh kumod on the default ports (7070, 7071) with the
//! real CLI, as a new user copy-pasting would. Blocks marked
//! `<!-- readme-test: skip (why) -->` on the line before are left out (the
//! set-up commands themselves, external services).
//!
//! Each command must exit 0, unless its comment says `exits N`. The only
//! change made to a command: `kumo logs … --follow` (which runs until
//! Ctrl-C) is stopped after 3 s.

use std::path::Path;
use std::process::Command;

use kumo_tests::{bin_dir, root_or_skip, Kumo};

/// A command of a block: its first line number in the README and its text
/// (continuation lines and here-documents included).
#[derive(Debug)]
struct Step {
    line: usize,
    text: String,
    expected_code: i32,
}

const SKIP_MARKER: &str = "<!-- readme-test: skip";

/// The `sh` blocks to run: (line of the opening fence, body lines).
fn runnable_blocks(readme: &str) -> Vec<(usize, Vec<&str>)> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() == "```sh" {
            let skipped = i > 0 && lines[i - 1].starts_with(SKIP_MARKER);
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && lines[end].trim_end() != "```" {
                end += 1;
            }
            if !skipped {
                blocks.push((start + 1, lines[start..end].to_vec()));
            }
            i = end;
        }
        i += 1;
    }
    blocks
}

/// The exit code a command's trailing comment announces (`# exits 1`).
fn expected_code(text: &str) -> i32 {
    text.split("exits ")
        .nth(1)
        .and_then(|rest| rest.chars().next())
        .and_then(|c| c.to_digit(10))
        .map_or(0, |d| d as i32)
}

/// Splits a block into commands: comment-only and blank lines dropped,
/// `\` continuations joined, here-documents kept with their command.
fn steps(first_line: usize, body: &[&str]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let line = body[i];
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        let mut text = String::from(line);
        while text.ends_with('\\') && i + 1 < body.len() {
            i += 1;
            text.push('\n');
            text.push_str(body[i]);
        }
        if let Some(delimiter) = heredoc_delimiter(&text) {
            while i + 1 < body.len() {
                i += 1;
                text.push('\n');
                text.push_str(body[i]);
                if body[i].trim() == delimiter {
                    break;
                }
            }
        }
        let mut expected_code = expected_code(&text);
        let code = text.split(" #").next().unwrap_or_default();
        if code.contains("kumo logs") && code.contains("--follow") {
            text = format!("timeout 3 {text}");
            expected_code = 124;
        }
        steps.push(Step {
            line: first_line + start,
            text,
            expected_code,
        });
        i += 1;
    }
    steps
}

/// `EOF` of `cat > f <<'EOF'` / `<<EOF`.
fn heredoc_delimiter(text: &str) -> Option<String> {
    let after = text.split("<<").nth(1)?;
    let word = after.split_whitespace().next()?;
    Some(word.trim_matches(['\'', '"']).to_string())
}

#[test]
fn splitting_finds_commands_heredocs_and_expectations() {
    let readme = "intro\n```sh\n# comment\nkumo a \\\n  --b   # exits 2\ncat > f <<'PY'\nx = 1\nPY\nkumo logs f --follow\n```\n\
                  <!-- readme-test: skip (x) -->\n```sh\nnever\n```\n";
    let blocks = runnable_blocks(readme);
    assert_eq!(blocks.len(), 1);
    let steps = steps(blocks[0].0, &blocks[0].1);
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!((steps[0].line, steps[0].expected_code), (4, 2));
    assert!(steps[1].text.ends_with("PY") && steps[1].text.contains("x = 1"));
    assert_eq!(steps[2].expected_code, 124);
}

#[test]
fn the_readme_runs_top_to_bottom() {
    if !root_or_skip() {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let all: Vec<Step> = runnable_blocks(&readme)
        .into_iter()
        .flat_map(|(line, body)| steps(line, &body))
        .collect();
    assert!(all.len() > 40, "only {} commands found", all.len());

    let kumo = Kumo::start_on_ports(7070, 7071);
    let work = tempfile::tempdir().unwrap();
    // One shell for the whole walk-through, so variables carry over; each
    // command's exit code goes to fd 3.
    let mut driver = String::from("exec 3>\"$KUMO_README_CODES\"\n");
    for (n, step) in all.iter().enumerate() {
        let file = work.path().join(format!("step-{n}.sh"));
        std::fs::write(&file, format!("{}\n", step.text)).unwrap();
        driver.push_str(&format!(
            "echo \"### README line {}\"\nsource {} </dev/null\necho \"{n} $?\" >&3\n",
            step.line,
            file.display()
        ));
    }
    let codes_file = work.path().join("codes");
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin_dir().display());
    let output = Command::new("bash")
        .arg("-c")
        .arg(&driver)
        .current_dir(&repo)
        .env("PATH", path)
        .env("HOME", work.path())
        .env("KUMO_ENDPOINT", &kumo.endpoint)
        .env("KUMO_TOKEN_FILE", kumo.token_file())
        .env_remove("KUMO_TOKEN")
        .env("KUMO_README_CODES", &codes_file)
        .output()
        .unwrap();
    let transcript = format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let codes = std::fs::read_to_string(&codes_file).unwrap_or_default();
    let codes: Vec<i32> = codes
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    assert_eq!(
        codes.len(),
        all.len(),
        "the walk-through stopped early:\n{transcript}"
    );
    for (step, code) in all.iter().zip(&codes) {
        assert_eq!(
            *code,
            step.expected_code,
            "README line {}: `{}` exited {code}, expected {}\n{transcript}\n--- kumod ---\n{}",
            step.line,
            step.text,
            step.expected_code,
            kumo.log()
        );
    }
}
