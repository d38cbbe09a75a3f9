//! The fabric files shipped in `configs/`: every example parses, and every malformed file
//! gives exactly the messages in its `.expected` sibling. Adding a file adds a case.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use vixp_fabric::{Asn, BogonPrefixes, Fabric, Policy};

/// The repository's `configs/` directory.
fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// Files in `directory` whose name ends in `.extension`, sorted.
fn files(directory: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(directory)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == extension))
        .collect();
    found.sort();
    found
}

#[test]
fn every_shipped_fabric_file_parses() {
    let mut paths = vec![configs().join("fabric.yaml")];
    paths.extend(files(&configs().join("examples"), "yaml"));
    assert!(
        paths.len() >= 3,
        "expected the demo fabric and at least two examples"
    );
    for path in paths {
        if let Err(error) = Fabric::load(&path) {
            panic!("{} must parse:\n{error}", path.display());
        }
    }
}

#[test]
fn demo_fabric_has_the_documented_exchange() {
    let fabric = Fabric::load(&configs().join("fabric.yaml")).expect("demo fabric parses");
    let rs1 = fabric.route_server(None).expect("exactly one route server");
    assert_eq!((rs1.name.as_str(), rs1.asn), ("rs1", Asn(64500)));
    assert_eq!(rs1.ipv4, Some(Ipv4Addr::new(198, 18, 0, 1)));
    assert_eq!(rs1.ipv6, Some("fd00:198:18::1".parse().expect("valid")));
    let members: Vec<(&str, Asn, Option<Ipv4Addr>)> = fabric
        .members
        .iter()
        .map(|member| (member.name.as_str(), member.asn, member.ipv4))
        .collect();
    assert_eq!(
        members,
        [
            ("alpha", Asn(64501), Some(Ipv4Addr::new(198, 18, 0, 11))),
            ("bravo", Asn(64502), Some(Ipv4Addr::new(198, 18, 0, 12))),
            ("charlie", Asn(64503), Some(Ipv4Addr::new(198, 18, 0, 13))),
        ]
    );
    assert_eq!(
        fabric.members[0].ipv6,
        Some("fd00:198:18::11".parse().expect("valid"))
    );
    assert!(
        fabric.members[2].endpoint.is_none(),
        "charlie is behind NAT"
    );
}

#[test]
fn lab_policy_example_differs_from_the_defaults_only_where_it_says() {
    let fabric =
        Fabric::load(&configs().join("examples/lab-policy.yaml")).expect("lab example parses");
    let expected = Policy {
        allow_prefixes: vec![
            "198.18.0.0/15".parse().expect("valid"),
            "fd00::/8".parse().expect("valid"),
        ],
        reject_private_asns: false,
        ..Policy::default()
    };
    assert_eq!(fabric.policy, expected);
    assert_eq!(fabric.policy.bogon_prefixes, BogonPrefixes::Default);
    let demo = Fabric::load(&configs().join("fabric.yaml")).expect("demo fabric parses");
    assert_eq!(
        demo.policy,
        Policy::default(),
        "no policy block means the defaults"
    );
}

#[test]
fn every_malformed_file_gives_its_expected_messages() {
    let directory = configs().join("malformed");
    let cases = files(&directory, "yaml");
    assert!(cases.len() >= 20, "only {} malformed cases", cases.len());
    let expected_files = files(&directory, "expected");
    assert_eq!(
        expected_files.len(),
        cases.len(),
        "every .yaml in {} needs a .expected sibling and the reverse",
        directory.display()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let file_name = case.file_name().expect("file name");
        let text = fs::read_to_string(case).expect("readable case");
        let expected_path = case.with_extension("expected");
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|error| panic!("{}: {error}", expected_path.display()));
        let actual = match Fabric::parse(&text, Path::new(file_name)) {
            Ok(_) => "(parsed without error)".to_owned(),
            Err(error) => error.to_string(),
        };
        if actual.trim_end() != expected.trim_end() {
            failures.push(format!(
                "{}:\n  expected: {}\n  actual:   {}",
                case.display(),
                expected.trim_end().replace('\n', "\n            "),
                actual.replace('\n', "\n            ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn load_reports_the_path_in_every_message() {
    let path = configs().join("malformed/12-duplicate-asn.yaml");
    let error = Fabric::load(&path).expect_err("malformed");
    let prefix = format!("{}:", path.display());
    assert!(
        error
            .to_string()
            .lines()
            .all(|line| line.starts_with(&prefix)),
        "{error}"
    );
}

#[test]
fn every_truncation_of_the_demo_fabric_gives_a_result_or_messages() {
    let text = fs::read_to_string(configs().join("fabric.yaml")).expect("demo fabric");
    let cuts: Vec<usize> = (0..=text.len())
        .filter(|&cut| text.is_char_boundary(cut))
        .collect();
    for cut in cuts {
        match Fabric::parse(&text[..cut], Path::new("cut.yaml")) {
            Ok(fabric) => assert!(!fabric.route_servers.is_empty()),
            Err(error) => {
                let message = error.to_string();
                assert!(!message.is_empty(), "empty error at byte {cut}");
                assert!(
                    message.lines().all(|line| line.starts_with("cut.yaml")),
                    "byte {cut}: {message}"
                );
            }
        }
    }
}
