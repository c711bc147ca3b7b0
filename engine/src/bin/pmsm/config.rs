//! `--config FILE` for `pmsm serve`, `pmsm dealer` and `pmsm client`: a TOML file of
//! the command's own options, so a party's settings live in one reviewed file.
//!
//! Each key is an option's long name (`max_connections` or `max-connections`); a
//! string or number is its value, `true` sets a flag (`false` leaves it off), an array
//! repeats the option (`machine = ["dlp=rules.txt", "ab=ab.json"]`). The file's options
//! come first on the command line, so options given there override it. A key that is
//! not an option of the command is an error naming the file and the key.
//!
//! ```toml
//! party = 0
//! listen = "0.0.0.0:7101"
//! dealer = "dealer.internal:7100"
//! certs = "/etc/pmsm/certs"
//! machine = ["dlp=/etc/pmsm/rules.txt,reveal=accept"]
//! metrics = "127.0.0.1:9101"
//! idle_timeout = 3600
//! log_format = "json"
//! ```

use clap::CommandFactory;
use std::ffi::OsString;

/// `args` with every `--config FILE` replaced by the file's options, placed right
/// after the subcommand (before the options given on the command line).
pub fn expand<C: CommandFactory>(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let Some(i) = args.iter().position(|a| a == "--config") else { return Ok(args) };
    let sub = args.get(1).and_then(|s| s.to_str()).unwrap_or_default().to_string();
    if !["serve", "dealer", "client"].contains(&sub.as_str()) || i < 2 {
        return Err("--config is an option of pmsm serve, dealer and client".into());
    }
    let path = args.get(i + 1).ok_or("--config needs a FILE")?.clone();
    let shown = path.to_string_lossy().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{shown}: {e}"))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
    let command = C::command();
    let known: Vec<String> = command
        .find_subcommand(&sub)
        .map(|c| c.get_arguments().filter_map(|a| a.get_long().map(String::from)).collect())
        .unwrap_or_default();
    let mut options = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        if long == "config" || !known.contains(&long) {
            return Err(format!("{shown}: {key:?} is not an option of pmsm {sub}"));
        }
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        for v in values {
            let flag = OsString::from(format!("--{long}"));
            match v {
                toml::Value::String(s) => options.extend([flag, s.into()]),
                toml::Value::Integer(n) => options.extend([flag, n.to_string().into()]),
                toml::Value::Float(x) => options.extend([flag, x.to_string().into()]),
                toml::Value::Boolean(true) => options.push(flag),
                toml::Value::Boolean(false) => {}
                other => {
                    return Err(format!(
                        "{shown}: {key:?} has a {} value; give a string, number, boolean or array",
                        other.type_str()
                    ));
                }
            }
        }
    }
    let mut out: Vec<OsString> = args[..2].to_vec();
    out.extend(options);
    out.extend(args[2..i].iter().cloned());
    out.extend(args[i + 2..].iter().cloned());
    Ok(out)
}
