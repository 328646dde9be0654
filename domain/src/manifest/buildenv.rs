//! `~/.buildenv` and the preamble of every task script.

use std::collections::BTreeMap;

use serde::Serialize;

use super::EnvValue;

/// What the guest is told about the job it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildContext {
    pub job_id: u64,
    pub job_url: String,
    /// `builds`.
    pub ci_name: String,
    /// The job token minted for the manifest's `oauth:` grants, exported as
    /// `OAUTH2_TOKEN` (what `acurl` sends).
    pub oauth_token: Option<String>,
}

/// The content of `~/.buildenv`, a bash file sourced by every task.
///
/// It exports `CI_NAME`, `JOB_ID` and `JOB_URL`, then one `export NAME='value'`
/// per manifest environment entry (so, as on builds.sr.ht, the manifest may
/// override those three), and defines `complete-build`.
///
/// Values: strings are single-quoted (`'` written as `'\''`); integers, floats
/// and booleans are written as text (`true`/`false`); null is the empty string;
/// a list becomes a bash array, `NAME=('a' 'b')`. Bash cannot export arrays, so
/// lists are plain (global, unexported) assignments: they exist in the task
/// script that sources this file but not in programs it starts. NUL bytes, which
/// no shell variable can hold, are dropped (the validator rejects them anyway).
/// Entries whose name is not a shell identifier are skipped (the validator
/// rejects those too), so the file always parses.
///
/// `complete-build` contains a hyphen: bash accepts that function name outside
/// POSIX mode, which is how task scripts run.
pub fn render_buildenv(env: &BTreeMap<String, EnvValue>, ctx: &BuildContext) -> String {
    let mut out =
        String::from("# ~/.buildenv: written by builds for this job, sourced by every task.\n");
    out.push_str(&format!("export CI_NAME={}\n", quote(&ctx.ci_name)));
    out.push_str(&format!("export JOB_ID={}\n", ctx.job_id));
    out.push_str(&format!("export JOB_URL={}\n", quote(&ctx.job_url)));
    if let Some(token) = &ctx.oauth_token {
        out.push_str(&format!("export OAUTH2_TOKEN={}\n", quote(token)));
    }
    for (name, value) in env {
        if !is_shell_identifier(name) {
            continue;
        }
        match value {
            EnvValue::List(items) => {
                let words: Vec<String> = items.iter().map(|i| quote(i)).collect();
                out.push_str(&format!("{name}=({})\n", words.join(" ")));
            }
            other => {
                out.push_str(&format!("export {name}={}\n", quote(&scalar_text(other))));
            }
        }
    }
    out.push_str("complete-build() { echo 1 > ~/.complete-build; exit 0; }\n");
    out
}

/// The script run for one task: a bash shebang, `. ~/.buildenv`, the `acurl`
/// helper (curl with the job's OAuth bearer token, with tracing turned off
/// inside it so the token never reaches the log), `set -xe`, then `script`.
pub fn task_script(name: &str, script: &str) -> String {
    let label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut out = format!(
        "#!/usr/bin/env bash\n\
         # task: {label}\n\
         . ~/.buildenv\n\
         acurl() ( set +x; curl --oauth2-bearer \"$OAUTH2_TOKEN\" \"$@\" )\n\
         set -xe\n"
    );
    out.push_str(script);
    if !script.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The text of a non-list environment value.
fn scalar_text(value: &EnvValue) -> String {
    match value {
        EnvValue::Str(s) => s.clone(),
        EnvValue::Int(i) => i.to_string(),
        EnvValue::Float(f) => float_text(*f),
        EnvValue::Bool(b) => b.to_string(),
        EnvValue::Null => String::new(),
        EnvValue::List(items) => items.join(" "),
    }
}

/// Floats as the shortest text that reads back the same, keeping a `.0` on
/// whole numbers (`1.0`, `3.1`, `1e300`, `inf`, `-inf`, `NaN`).
pub(crate) fn float_text(f: f64) -> String {
    format!("{f:?}")
}

/// Single-quote `s` for bash: `'` becomes `'\''`; NUL bytes are dropped.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`
pub(crate) fn is_shell_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    /// A temporary HOME, removed on drop.
    struct TempHome(PathBuf);

    impl TempHome {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "builds-buildenv-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempHome(dir)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempHome {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ctx() -> BuildContext {
        BuildContext {
            job_id: 42,
            job_url: "https://builds.example.com/~alice/job/42".into(),
            ci_name: "builds".into(),
            oauth_token: None,
        }
    }

    #[test]
    fn a_job_token_is_exported_quoted() {
        let mut ctx = ctx();
        assert!(!render_buildenv(&BTreeMap::new(), &ctx).contains("OAUTH2_TOKEN"));
        ctx.oauth_token = Some("tok'en".into());
        let env = render_buildenv(&BTreeMap::new(), &ctx);
        assert!(env.contains("export OAUTH2_TOKEN='tok'\\''en'\n"), "{env}");
    }

    /// Write `.buildenv` into a fresh HOME and run `bash -c command` there.
    fn run_in_home(env: &BTreeMap<String, EnvValue>, command: &str) -> (TempHome, Output) {
        let home = TempHome::new("run");
        std::fs::write(home.path().join(".buildenv"), render_buildenv(env, &ctx())).unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(command)
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(home.path())
            .output()
            .unwrap();
        (home, out)
    }

    fn printed(env: &BTreeMap<String, EnvValue>, name: &str) -> String {
        let (_home, out) = run_in_home(env, &format!(". ~/.buildenv; printf %s \"${name}\""));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("abc"), "'abc'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("a\0b"), "'ab'");
    }

    #[test]
    fn identifiers() {
        for ok in ["A", "_", "a_b", "PATH", "x1", "_9"] {
            assert!(is_shell_identifier(ok), "{ok}");
        }
        for bad in ["", "1A", "a-b", "a b", "a.b", "é", "a=b", "$A"] {
            assert!(!is_shell_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn floats() {
        assert_eq!(float_text(1.0), "1.0");
        assert_eq!(float_text(3.1), "3.1");
        assert_eq!(float_text(-0.5), "-0.5");
    }

    #[test]
    fn tricky_strings_round_trip_through_bash() {
        let tricky = [
            "plain",
            "",
            "single ' quote",
            "''''",
            "double \" quote",
            "dollar $HOME and ${PATH} and $(id) and `id`",
            "back\\slash\\",
            "line one\nline two\n",
            "\n",
            "tab\there",
            "unicode: héllo wörld ✓ 日本語 🚀",
            "glob * ? [a-z] ~ ~/x",
            "semi; && || | > < & !history",
            "'\\''",
            "-n",
            "trailing space ",
        ];
        for value in tricky {
            let mut env = BTreeMap::new();
            env.insert("TRICKY".to_string(), EnvValue::Str(value.to_string()));
            assert_eq!(printed(&env, "TRICKY"), value, "value {value:?}");
        }
    }

    #[test]
    fn scalar_values_as_text() {
        let mut env = BTreeMap::new();
        env.insert("I".to_string(), EnvValue::Int(-12));
        env.insert("F".to_string(), EnvValue::Float(2.5));
        env.insert("T".to_string(), EnvValue::Bool(true));
        env.insert("B".to_string(), EnvValue::Bool(false));
        env.insert("N".to_string(), EnvValue::Null);
        let (_home, out) = run_in_home(
            &env,
            ". ~/.buildenv; printf '%s|' \"$I\" \"$F\" \"$T\" \"$B\" \"${N-unset}\"",
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "-12|2.5|true|false||");
    }

    #[test]
    fn values_are_exported_to_children() {
        let mut env = BTreeMap::new();
        env.insert("CHILD".to_string(), EnvValue::Str("seen by child".into()));
        let (_home, out) = run_in_home(
            &env,
            ". ~/.buildenv; bash -c 'printf %s \"$CHILD|$CI_NAME|$JOB_ID|$JOB_URL\"'",
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "seen by child|builds|42|https://builds.example.com/~alice/job/42"
        );
    }

    #[test]
    fn lists_are_bash_arrays() {
        let mut env = BTreeMap::new();
        env.insert(
            "VERSIONS".to_string(),
            EnvValue::List(vec![
                "3.9".into(),
                "it's".into(),
                "a b".into(),
                "$x\n".into(),
            ]),
        );
        env.insert("EMPTY".to_string(), EnvValue::List(vec![]));
        let (_home, out) = run_in_home(
            &env,
            ". ~/.buildenv; printf '<%s>' \"${#VERSIONS[@]}\" \"${VERSIONS[@]}\" \"${#EMPTY[@]}\"",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "<4><3.9><it's><a b><$x\n><0>"
        );
    }

    #[test]
    fn manifest_may_override_job_variables() {
        let mut env = BTreeMap::new();
        env.insert("CI_NAME".to_string(), EnvValue::Str("mine".into()));
        assert_eq!(printed(&env, "CI_NAME"), "mine");
    }

    #[test]
    fn invalid_names_are_skipped() {
        let mut env = BTreeMap::new();
        env.insert("bad-name".to_string(), EnvValue::Str("x".into()));
        env.insert("GOOD".to_string(), EnvValue::Str("y".into()));
        let text = render_buildenv(&env, &ctx());
        assert!(!text.contains("bad-name"));
        assert_eq!(printed(&env, "GOOD"), "y");
    }

    #[test]
    fn buildenv_sources_cleanly_with_strict_options() {
        let mut env = BTreeMap::new();
        env.insert("A".to_string(), EnvValue::Str("a".into()));
        env.insert("L".to_string(), EnvValue::List(vec!["x".into()]));
        let (_home, out) = run_in_home(&env, "set -euo pipefail; . ~/.buildenv; echo ok");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    }

    fn run_task(home: &TempHome, name: &str, script: &str, extra_env: &[(&str, &str)]) -> Output {
        let path = home.path().join(format!("task-{name}"));
        std::fs::write(&path, task_script(name, script)).unwrap();
        let mut cmd = Command::new("bash");
        cmd.arg(&path)
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(home.path());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn home_with_env(env: &BTreeMap<String, EnvValue>) -> TempHome {
        let home = TempHome::new("task");
        std::fs::write(home.path().join(".buildenv"), render_buildenv(env, &ctx())).unwrap();
        home
    }

    #[test]
    fn task_script_shape() {
        let s = task_script("build", "make");
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "#!/usr/bin/env bash");
        assert!(lines.contains(&". ~/.buildenv"));
        let acurl = lines.iter().position(|l| l.starts_with("acurl()")).unwrap();
        let setxe = lines.iter().position(|l| *l == "set -xe").unwrap();
        assert!(acurl < setxe);
        assert_eq!(*lines.last().unwrap(), "make");
        assert!(s.ends_with("make\n"));
        assert!(task_script("x", "a\n").ends_with("set -xe\na\n"));
        // A hostile name cannot break out of the comment line.
        assert!(task_script("a\nrm -rf /", "true").contains("# task: a_rm_-rf__\n"));
    }

    #[test]
    fn task_sees_environment_and_traces_commands() {
        let mut env = BTreeMap::new();
        env.insert(
            "GREETING".to_string(),
            EnvValue::Str("hello 'world'".into()),
        );
        let home = home_with_env(&env);
        let out = run_task(&home, "hi", "echo \"$GREETING $JOB_ID\"\n", &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello 'world' 42\n");
        // set -x traces the command on stderr.
        assert!(String::from_utf8_lossy(&out.stderr).contains("+ echo"));
    }

    #[test]
    fn task_stops_at_the_first_failure() {
        let home = home_with_env(&BTreeMap::new());
        let out = run_task(&home, "fail", "echo one\nfalse\necho two\n", &[]);
        assert!(!out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n");
    }

    #[test]
    fn complete_build_exits_zero_and_leaves_a_mark() {
        let home = home_with_env(&BTreeMap::new());
        let out = run_task(
            &home,
            "early",
            "echo before\ncomplete-build\necho after\nfalse\n",
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "before\n");
        let mark = std::fs::read_to_string(home.path().join(".complete-build")).unwrap();
        assert_eq!(mark, "1\n");
    }

    #[test]
    fn complete_build_inside_a_condition() {
        let home = home_with_env(&BTreeMap::new());
        let out = run_task(
            &home,
            "cond",
            "if [ \"$JOB_ID\" = 42 ]; then\n  complete-build\nfi\necho not reached\n",
            &[],
        );
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        assert!(home.path().join(".complete-build").exists());
    }

    #[test]
    fn acurl_sends_the_token_without_tracing_it() {
        let home = home_with_env(&BTreeMap::new());
        // A fake curl that records its arguments.
        let bin = home.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let fake = bin.join("curl");
        std::fs::write(
            &fake,
            "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > \"$HOME/curl-args\"\n",
        )
        .unwrap();
        Command::new("chmod")
            .arg("755")
            .arg(&fake)
            .status()
            .unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let token = "s3cr3t-t0ken-value";
        let home_path = home.path().to_path_buf();
        let script_path = home_path.join("task-deploy");
        std::fs::write(
            &script_path,
            task_script(
                "deploy",
                "acurl -X POST https://example.com/api\necho done\n",
            ),
        )
        .unwrap();
        let out = Command::new("bash")
            .arg(&script_path)
            .env_clear()
            .env("HOME", &home_path)
            .env("PATH", path)
            .env("OAUTH2_TOKEN", token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let args = std::fs::read_to_string(home_path.join("curl-args")).unwrap();
        assert_eq!(
            args,
            format!("--oauth2-bearer\n{token}\n-X\nPOST\nhttps://example.com/api\n")
        );
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!log.contains(token), "token leaked into the log:\n{log}");
        assert!(
            log.contains("+ acurl -X POST https://example.com/api"),
            "{log}"
        );
        assert!(
            log.contains("+ echo done"),
            "tracing must resume after acurl:\n{log}"
        );
    }
}
