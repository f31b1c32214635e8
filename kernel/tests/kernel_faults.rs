//! Starts the real `tandem` binary and checks it survives bad input: wrong signatures,
//! garbage frames, malformed content, and keeps heartbeat and control alive while a cell runs.

mod common;

use common::Kernel;
use serde_json::json;
use std::time::{Duration, Instant};
use tandem::wire::Signer;

#[test]
fn badly_signed_execute_is_never_run() {
    let kernel = Kernel::start();
    let marker = kernel.scratch("ran.txt");
    let code = format!(
        "std::fs::write({:?}, \"x\").unwrap();",
        marker.to_str().unwrap()
    );
    let forged = Kernel::message("execute_request", json!({ "code": code }));
    let wrong_key = Signer::new("not-the-key");
    kernel
        .shell
        .send_multipart(forged.to_frames(&wrong_key), 0)
        .unwrap();
    let unsigned = Signer::new("");
    kernel
        .shell
        .send_multipart(forged.to_frames(&unsigned), 0)
        .unwrap();
    // A good request behind them is answered; had the forged one run, it would have run first.
    let (reply, _) = kernel.execute("1 + 1");
    assert_eq!(reply.content["status"], "ok", "{}", reply.content);
    assert!(!marker.exists(), "a forged execute_request was executed");
    assert!(kernel
        .reply_to(
            &kernel.shell,
            &forged.header.msg_id,
            Duration::from_millis(200)
        )
        .is_none());
}

#[test]
fn garbage_frames_do_not_stop_the_kernel() {
    let kernel = Kernel::start();
    let junk: Vec<Vec<Vec<u8>>> = vec![
        vec![b"hello".to_vec()],
        vec![b"<IDS|MSG>".to_vec()],
        vec![b"<IDS|MSG>".to_vec(), b"sig".to_vec(), b"{".to_vec()],
        vec![
            b"<IDS|MSG>".to_vec(),
            b"".to_vec(),
            vec![0xff, 0x00, 0xfe],
            b"{}".to_vec(),
            b"{}".to_vec(),
            b"{}".to_vec(),
        ],
        vec![vec![0u8; 70_000]],
    ];
    for frames in junk {
        kernel.raw_shell.send_multipart(frames, 0).unwrap();
    }
    // A correctly signed message whose header lacks fields is dropped too.
    let header = br#"{"msg_id": "x", "msg_type": "execute_request"}"#.to_vec();
    let rest: [&[u8]; 3] = [b"{}", b"{}", br#"{"code": "1"}"#];
    let signature = kernel.signer.sign(&[&header, rest[0], rest[1], rest[2]]);
    let mut frames = vec![b"<IDS|MSG>".to_vec(), signature.into_bytes(), header];
    frames.extend(rest.iter().map(|f| f.to_vec()));
    kernel.raw_shell.send_multipart(frames, 0).unwrap();

    let reply = kernel.request(&kernel.shell, "kernel_info_request", json!({}));
    assert_eq!(reply.content["language_info"]["name"], "rust");
}

#[test]
fn malformed_content_gets_an_error_reply() {
    let kernel = Kernel::start();
    let reply = kernel.request(&kernel.shell, "execute_request", json!({"silent": true}));
    assert_eq!(reply.header.msg_type, "execute_reply");
    assert_eq!(reply.content["status"], "error");
    assert_eq!(reply.content["ename"], "InvalidRequest");
    let reply = kernel.request(&kernel.shell, "no_such_request", json!({}));
    assert_eq!(reply.header.msg_type, "no_such_reply");
    assert_eq!(reply.content["status"], "error");
}

#[test]
fn heartbeat_and_control_answer_while_a_cell_runs() {
    let kernel = Kernel::start();
    let (reply, _) = kernel.execute("1");
    assert_eq!(reply.content["status"], "ok");
    let busy = Kernel::message(
        "execute_request",
        json!({"code": "println!(\"sleeping\"); std::thread::sleep(std::time::Duration::from_secs(4));"}),
    );
    kernel
        .shell
        .send_multipart(busy.to_frames(&kernel.signer), 0)
        .unwrap();
    kernel.iopub_until_stdout(&busy.header.msg_id, "sleeping");
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let sent = Instant::now();
        kernel.heartbeat.send("ping", 0).unwrap();
        assert!(
            kernel.heartbeat.poll(zmq::POLLIN, 1000).unwrap() > 0,
            "no heartbeat"
        );
        assert_eq!(kernel.heartbeat.recv_bytes(0).unwrap(), b"ping");
        worst = worst.max(sent.elapsed());
        let info = kernel.request(&kernel.control, "kernel_info_request", json!({}));
        assert_eq!(info.content["status"], "ok");
    }
    println!("slowest heartbeat while busy: {worst:?}");
    // The heartbeat has a thread of its own that does nothing else, so a busy cell cannot
    // delay it; 250 ms is far above the round trips measured here (well under 1 ms) and
    // far below what a frontend would take for a dead kernel.
    assert!(
        worst < Duration::from_millis(250),
        "slowest heartbeat {worst:?}"
    );
    let reply = kernel
        .reply_to(&kernel.shell, &busy.header.msg_id, Duration::from_secs(60))
        .expect("the sleeping cell finishes");
    assert_eq!(reply.content["status"], "ok");
}

#[test]
fn deeply_nested_input_gets_an_answer_and_the_kernel_serves_on() {
    let kernel = Kernel::start();
    let deep = "(".repeat(100_000) + "1" + &")".repeat(100_000);
    let open = "(".repeat(100_000);
    let verdict = kernel.request(&kernel.shell, "is_complete_request", json!({"code": open}));
    assert_eq!(verdict.content["status"], "invalid", "{}", verdict.content);
    let completion = kernel.request(
        &kernel.shell,
        "complete_request",
        json!({"code": deep, "cursor_pos": 100_001}),
    );
    assert_eq!(completion.content["status"], "ok");
    let inspection = kernel.request(
        &kernel.shell,
        "inspect_request",
        json!({"code": deep, "cursor_pos": 100_001}),
    );
    assert_eq!(inspection.content["status"], "ok");
    let (reply, _) = kernel.execute(&deep);
    assert_eq!(reply.content["status"], "error");
    let said = reply.content["evalue"].as_str().unwrap_or_default();
    assert!(said.contains("levels deep"), "{}", reply.content);
    // Other kinds of nesting go to the parsers, on a stack deep enough for them.
    let (reply, _) = kernel.execute(&("-".repeat(20_000) + "1"));
    assert!(reply.content["status"].is_string(), "{}", reply.content);
    let (reply, _) = kernel.execute("40 + 2");
    assert_eq!(reply.content["status"], "ok", "{}", reply.content);
}

#[test]
fn an_oversized_frame_is_refused_and_the_kernel_serves_on() {
    let kernel = Kernel::start_with_env(&[("TANDEM_MAX_MESSAGE_MB", "1")]);
    // A request answered at once, padded to two MiB: over this kernel's 1 MiB limit.
    // libzmq drops the sender's connection before the frame is taken in; the request is
    // never answered (below the limit, its reply would come within milliseconds).
    let big = Kernel::message(
        "kernel_info_request",
        json!({ "padding": "x".repeat(2 << 20) }),
    );
    kernel
        .raw_shell
        .send_multipart(big.to_frames(&kernel.signer), 0)
        .unwrap();
    assert!(kernel
        .reply_to(
            &kernel.raw_shell,
            &big.header.msg_id,
            Duration::from_secs(3)
        )
        .is_none());
    let reply = kernel.request(&kernel.shell, "kernel_info_request", json!({}));
    assert_eq!(reply.content["status"], "ok");
}

#[test]
fn a_connection_file_without_a_key_is_refused() {
    let (status, stderr) = common::run_with_connection(|connection| {
        connection["key"] = json!("");
    });
    assert!(!status.success());
    assert!(stderr.contains("empty key"), "{stderr}");
}
