//! Documentation generated from the command-line definition: shell
//! completion scripts and the manual page (installed by the packages).

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::args::Cli;

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "kumo", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// Writes kumo(1) in roff to stdout, one section per subcommand.
pub fn man_page() -> ExitCode {
    let command = Cli::command();
    let mut page = Vec::new();
    if let Err(err) = render_man_page(&command, &mut page) {
        eprintln!("error: rendering the manual page: {err}");
        return ExitCode::from(2);
    }
    match std::io::stdout().write_all(&page) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: writing the manual page: {err}");
            ExitCode::from(2)
        }
    }
}

/// kumo(1): the top-level page followed by each subcommand's own page.
fn render_man_page(command: &clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    clap_mangen::Man::new(command.clone()).render(out)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("kumo-{}", sub.get_name());
        let bin_name = format!("kumo {}", sub.get_name());
        clap_mangen::Man::new(sub.clone().name(name).bin_name(bin_name)).render(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_page_names_every_command() {
        let mut page = Vec::new();
        render_man_page(&Cli::command(), &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        for command in ["function", "invoke", "logs", "trigger", "alias", "agents"] {
            assert!(
                page.contains(&format!("kumo\\-{command}")),
                "{command} missing"
            );
        }
    }

    #[test]
    fn bash_completion_offers_subcommands() {
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "kumo",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("complete -F _kumo"));
        assert!(script.contains("function") && script.contains("invoke"));
    }
}
