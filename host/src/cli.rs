//! A small, strict command-line parser: every command lists its flags, and an
//! unknown flag, a missing value or a value that does not parse is a usage
//! error (exit code 2) that says what was expected.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// A usage error: exit code 2 and the message.
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Usage {}

/// A flag a command accepts: name (without `--`), whether it takes a value, help.
pub type Spec = (&'static str, bool, &'static str);

/// Parsed flags of one command.
#[derive(Debug)]
pub struct Args {
    cmd: &'static str,
    values: HashMap<&'static str, String>,
}

fn usage<T>(msg: String) -> anyhow::Result<T> {
    Err(Usage(msg).into())
}

/// The help text of a command's flags.
pub fn help(spec: &[Spec]) -> String {
    spec.iter()
        .map(|(n, v, h)| format!("  --{n}{}  {h}", if *v { " <value>" } else { "" }))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Args {
    /// Parses `argv` (after the command name) against `spec`.
    pub fn parse(cmd: &'static str, argv: &[String], spec: &[Spec]) -> anyhow::Result<Args> {
        let mut values = HashMap::new();
        let mut i = 0;
        while i < argv.len() {
            let a = &argv[i];
            let Some(body) = a.strip_prefix("--") else {
                return usage(format!(
                    "ember {cmd}: unexpected argument '{a}'\nflags:\n{}",
                    help(spec)
                ));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let Some(&(sname, takes, _)) = spec.iter().find(|s| s.0 == name) else {
                return usage(format!(
                    "ember {cmd}: unknown flag --{name}\nflags:\n{}",
                    help(spec)
                ));
            };
            let value = if takes {
                match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        match argv.get(i) {
                            Some(v) if !v.starts_with("--") => v.clone(),
                            _ => return usage(format!("ember {cmd}: --{name} needs a value")),
                        }
                    }
                }
            } else {
                if inline.is_some() {
                    return usage(format!("ember {cmd}: --{name} takes no value"));
                }
                String::new()
            };
            values.insert(sname, value);
            i += 1;
        }
        Ok(Args { cmd, values })
    }

    /// Whether a flag was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// A flag's raw value.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A flag's value parsed as `T`, or `default`.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> anyhow::Result<T> {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => match v.parse() {
                Ok(x) => Ok(x),
                Err(_) => usage(format!(
                    "ember {}: --{name} '{v}' is not a valid {}",
                    self.cmd,
                    std::any::type_name::<T>()
                )),
            },
        }
    }

    /// A positive integer flag.
    pub fn positive(&self, name: &str, default: usize) -> anyhow::Result<usize> {
        let v = self.get(name, default)?;
        if v == 0 {
            return usage(format!("ember {}: --{name} must be at least 1", self.cmd));
        }
        Ok(v)
    }

    /// A finite, strictly positive float flag.
    pub fn positive_f32(&self, name: &str, default: f32) -> anyhow::Result<f32> {
        let v: f32 = self.get(name, default)?;
        if !(v.is_finite() && v > 0.0) {
            return usage(format!(
                "ember {}: --{name} must be a finite number above 0, got {v}",
                self.cmd
            ));
        }
        Ok(v)
    }

    /// A float flag in [lo, hi).
    pub fn f32_in(&self, name: &str, default: f32, lo: f32, hi: f32) -> anyhow::Result<f32> {
        let v: f32 = self.get(name, default)?;
        if !(v >= lo && v < hi) {
            return usage(format!(
                "ember {}: --{name} must be in [{lo}, {hi}), got {v}",
                self.cmd
            ));
        }
        Ok(v)
    }

    /// A comma-separated list of positive widths (`256,128`; empty for none).
    pub fn widths(&self, name: &str, default: &[usize]) -> anyhow::Result<Vec<usize>> {
        let Some(v) = self.str(name) else {
            return Ok(default.to_vec());
        };
        if v.trim().is_empty() || v == "none" {
            return Ok(Vec::new());
        }
        v.split(',')
            .map(|s| match s.trim().parse::<usize>() {
                Ok(x) if x > 0 => Ok(x),
                _ => usage(format!(
                    "ember {}: --{name} wants positive widths like 256,128; got '{v}'",
                    self.cmd
                )),
            })
            .collect()
    }

    /// `--threads N` (0 or absent: every core), capped at the cores this
    /// process may use: more threads than cores only take turns on them
    /// (FAULTS 44), so the excess is dropped with a warning.
    pub fn threads(&self) -> anyhow::Result<usize> {
        let asked: usize = self.get("threads", 0)?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        if asked > cores {
            eprintln!(
                "warning: --threads {asked} is more than the {cores} cores available; using {cores}"
            );
            return Ok(cores);
        }
        Ok(asked)
    }

    /// The command name.
    pub fn cmd(&self) -> &'static str {
        self.cmd
    }
}

/// Writes a JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A JSON number (non-finite values become null).
pub fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}
