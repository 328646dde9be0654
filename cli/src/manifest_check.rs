//! `builds manifest check FILE...`

use builds_domain::manifest;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn read(path: &Path) -> Result<String, String> {
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| e.to_string())?;
        buf
    } else {
        std::fs::read(path).map_err(|e| e.to_string())?
    };
    String::from_utf8(bytes).map_err(|_| "the manifest is not valid UTF-8".to_string())
}

pub fn run(files: &[PathBuf], images: Option<&Path>) -> ExitCode {
    let offered = match images.map(crate::serve::offered_images).transpose() {
        Ok(offered) => offered,
        Err(err) => {
            eprintln!("builds: cannot list images: {err}");
            return ExitCode::from(2);
        }
    };
    let mut all_ok = true;
    for file in files {
        let name = file.display();
        let text = match read(file) {
            Ok(text) => text,
            Err(err) => {
                println!("{name}: cannot read: {err}");
                all_ok = false;
                continue;
            }
        };
        let result = match &offered {
            Some(offered) => manifest::parse_for_images(&text, offered),
            None => manifest::parse(&text),
        };
        match result {
            Ok(_) => println!("{name}: ok"),
            Err(problems) => {
                all_ok = false;
                for problem in problems {
                    println!("{name}: {problem}");
                }
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
