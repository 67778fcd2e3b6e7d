//! Every input in `fuzz/regressions/` (crashes the fuzzers found, kept after
//! the fix) and every sample capture, through the fuzzed entry points.

use std::path::Path;

/// The files kept for one fuzz target; every target keeps at least one, so
/// a folder that goes missing fails the test instead of passing it empty.
fn inputs(dir: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let entries = std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert!(!files.is_empty(), "{} keeps no input", root.display());
    files.sort();
    files
}

#[test]
fn capture_reader_survives_every_kept_input() {
    let mut files = inputs("fuzz/regressions/capture_file");
    files.extend(inputs("pcaps"));
    for path in files {
        let data = std::fs::read(&path).unwrap();
        mirador::fuzzing::read_capture(&data);
        for cut in [1, 24, 25, data.len() / 2, data.len().saturating_sub(1)] {
            mirador::fuzzing::read_capture(&data[..cut.min(data.len())]);
        }
    }
}

#[test]
fn pipeline_survives_every_kept_input() {
    for path in inputs("fuzz/regressions/pipeline") {
        let data = std::fs::read(&path).unwrap();
        let records = mirador::fuzzing::run_pipeline(&data);
        assert!(records > 0, "{} reaches no flow", path.display());
    }
}

/// The sample captures in the pipeline target's input format (the seeds of
/// its corpus) produce flows, so the target exercises real decoding.
#[test]
fn pipeline_input_of_a_sample_capture_yields_flows() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/basic.pcap");
    let mut file = mirador::capture::CaptureFile::open(&path).unwrap();
    let mut input = Vec::new();
    while let Some(packet) = file.next_packet().unwrap() {
        input.extend_from_slice(&(packet.data.len() as u16).to_le_bytes());
        input.push(0);
        input.extend_from_slice(packet.data);
    }
    assert!(mirador::fuzzing::run_pipeline(&input) >= 10);
}

#[test]
fn sample_capture_reads_all_its_packets() {
    let data =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/basic.pcap")).unwrap();
    assert_eq!(mirador::fuzzing::read_capture(&data), 105);
}

#[test]
fn rule_parser_survives_every_kept_input() {
    for path in inputs("fuzz/regressions/rules") {
        let data = std::fs::read(&path).unwrap();
        mirador::fuzzing::parse_rules(&data);
    }
}

#[test]
fn reassembly_matches_its_model_on_every_kept_input() {
    for path in inputs("fuzz/regressions/reassembly") {
        let data = std::fs::read(&path).unwrap();
        mirador::fuzzing::reassemble_model(&data);
    }
    // Segments out of order, overlapping, acknowledged past a hole, wrapping.
    let mut data = vec![3u8];
    for (kind, offset, len) in [
        (0u8, 400u16, 50u8),
        (1, 0, 25),
        (2, 90, 100),
        (3, 2_000, 0),
        (0, 1_990, 10),
    ] {
        data.push(kind);
        data.extend_from_slice(&offset.to_le_bytes());
        data.extend_from_slice(&[len, 0]);
    }
    assert!(mirador::fuzzing::reassemble_model(&data) >= 2_000);
}
