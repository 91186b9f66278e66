//! Fetch answers sent with sendfile(2) from segment files are byte for byte
//! the answers read into memory first: two brokers, one with
//! `fetch.sendfile.enable=false`, get the same batches and the same fetches,
//! and answer with the same frames.

use kafka_protocol::messages::FetchRequest;
use kafka_protocol::protocol::Request;
use strata_tests::raw::{self, batch, Conn};
use strata_tests::{metric, Broker};

#[test]
fn answers_sent_from_the_files_are_the_answers_read_into_memory() {
    // Small segments, so that answers span several files.
    let common = ["--set", "log.segment.bytes=20000"];
    let zero_copy = Broker::start(&common);
    let mut args = common.to_vec();
    args.extend(["--set", "fetch.sendfile.enable=false"]);
    let copied = Broker::start(&args);
    let mut conns = [zero_copy.addr(), copied.addr()].map(|a| Conn::connect(&a));
    for c in conns.iter_mut() {
        assert_eq!(c.create_topic("z", 3, &[]).error_code, 0);
        assert_eq!(c.create_topic("empty", 1, &[]).error_code, 0);
        // Batches of one to a few records of several sizes.
        for i in 0..120i64 {
            let p = (i % 3) as i32;
            let r = c.produce(
                "z",
                p,
                batch(
                    1 + (i % 4) as usize,
                    10 + (i as usize * 97) % 3_000,
                    1_000 + i,
                ),
            );
            assert_eq!(r.error_code, 0);
        }
    }
    // Fetches of several versions, offsets and limits, with partitions that
    // answer nothing, an unknown partition and one past the end.
    let fetches: Vec<(i16, FetchRequest)> = [4i16, 7, 11, 12]
        .iter()
        .flat_map(|&v| {
            [
                raw::fetch_request(
                    "z",
                    &[(0, 0, 1 << 20), (1, 5, 3_000), (2, 17, 1)],
                    0,
                    1 << 20,
                ),
                raw::fetch_request("z", &[(2, 0, 50_000), (0, 30, 50_000)], 0, 60_000),
                raw::fetch_request("z", &[(1, 1_000, 1_000), (7, 0, 1_000)], 0, 10_000),
                raw::fetch_request("empty", &[(0, 0, 1 << 20)], 0, 1 << 20),
            ]
            .into_iter()
            .map(move |f| (v, f))
        })
        .collect();
    for (n, (version, fetch)) in fetches.iter().enumerate() {
        let frames: Vec<_> = conns
            .iter_mut()
            .map(|c| {
                c.write_frame(&Conn::encode(FetchRequest::KEY, *version, n as i32, fetch));
                c.read_frame().expect("an answer")
            })
            .collect();
        assert_eq!(
            frames[0], frames[1],
            "fetch {n} (v{version}): the answer sent from the files differs"
        );
    }
    assert!(metric(&zero_copy, "strata_fetch_sendfile_bytes_total") > 0.0);
    assert_eq!(metric(&copied, "strata_fetch_sendfile_bytes_total"), 0.0);
}
