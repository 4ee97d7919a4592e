//! Validate `catalog/` with the same code the binary runs (`#[path]`-included), fail the build
//! with `file:line:col: message` on any error, and pre-digest the catalog to JSON for start-up.

use std::path::{Path, PathBuf};

#[allow(dead_code)]
mod catalog {
    #[path = "../src/catalog/body.rs"]
    pub mod body;
    #[path = "../src/catalog/cores.rs"]
    pub mod cores;
    #[path = "../src/catalog/diagnostic.rs"]
    pub mod diagnostic;
    #[path = "../src/catalog/jinja.rs"]
    pub mod jinja;
    #[path = "../src/catalog/load.rs"]
    pub mod load;
    #[path = "../src/catalog/model.rs"]
    pub mod model;
    #[path = "../src/catalog/schema.rs"]
    pub mod schema;
    #[path = "../src/catalog/validate.rs"]
    pub mod validate;
}

#[allow(dead_code)]
#[path = "src/date.rs"]
mod date;

use catalog::diagnostic::SourceFile;

fn main() {
    println!("cargo:rerun-if-changed=catalog");
    // A position-dependent executable needs no start-up relocations: ~15k fewer, and fewer
    // pages touched before `main` (measured in BENCHMARKS.md). Linux/ELF only.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=src/catalog");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    paths.sort();
    let mut files = Vec::new();
    for p in &paths {
        println!("cargo:rerun-if-changed={}", p.display());
        let rel = p.strip_prefix(&root).expect("inside catalog/");
        let text = std::fs::read_to_string(p)
            .unwrap_or_else(|e| fail(&format!("catalog/{}: {e}", rel.display())));
        let mut comps = rel.components();
        let folder = match (comps.next(), comps.next()) {
            (Some(first), Some(_)) => Some(first.as_os_str().to_string_lossy().into_owned()),
            _ => None,
        };
        files.push(SourceFile {
            path: format!("catalog/{}", rel.display()),
            text,
            folder,
            layer: 0,
        });
    }
    match catalog::load::load_files(&files) {
        Ok(cat) => {
            let out =
                PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("catalog.json");
            let json = serde_json::to_string(&cat).expect("catalog serializes");
            std::fs::write(out, json).expect("write catalog.json");
        }
        Err(diags) => {
            for d in &diags.0 {
                println!("cargo:warning={}", d.headline());
            }
            eprintln!("{diags}");
            std::process::exit(1);
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

fn fail(msg: &str) -> ! {
    println!("cargo:warning={msg}");
    std::process::exit(1);
}
