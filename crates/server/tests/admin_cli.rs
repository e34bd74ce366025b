//! The admin CLI of the real binary: `shop create`, `user add` (password from standard input or
//! a file, never from the command line), `user disable`, and the clear errors it gives for an
//! unknown shop, a duplicate email, a bad role and a short password.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_counterbook-server");

fn run(data: &Path, arguments: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BINARY)
        .args(arguments)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command refused while parsing its arguments exits without reading its input; the
    // broken pipe that leaves here is expected, and the exit status tells the rest.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn assert_fails_with(output: &Output, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains(message), "expected {message:?} in {stderr}");
}

fn assert_succeeds(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn shops_and_users_are_managed_with_clear_errors() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let add = |shop: &str, email: &str, role: &str, stdin: &str| {
        run(
            data,
            &[
                "user", "add", "--shop", shop, "--email", email, "--role", role,
            ],
            stdin,
        )
    };

    assert_fails_with(
        &add("kirana-1", "asha@example.com", "owner", "secret-password\n"),
        "unknown shop \"kirana-1\"",
    );
    let created = assert_succeeds(&run(
        data,
        &[
            "shop",
            "create",
            "--shop",
            "kirana-1",
            "--name",
            "Kirana One",
        ],
        "",
    ));
    assert_eq!(created.trim(), "created shop kirana-1");
    assert_fails_with(
        &run(data, &["shop", "create", "--shop", "kirana-1"], ""),
        "shop \"kirana-1\" already exists",
    );
    assert_fails_with(
        &run(data, &["shop", "create", "--shop", "a/b"], ""),
        "invalid shop id \"a/b\"",
    );

    let added = assert_succeeds(&add(
        "kirana-1",
        "Asha@Example.com",
        "owner",
        "secret-password\n",
    ));
    assert!(
        added.starts_with("added owner Asha@Example.com to shop kirana-1"),
        "{added}"
    );
    assert!(
        !added.contains("secret-password"),
        "the password is never echoed"
    );
    assert_fails_with(
        &add(
            "kirana-1",
            "asha@example.com",
            "cashier",
            "another-password\n",
        ),
        "a user with email \"asha@example.com\" already exists",
    );
    assert_fails_with(
        &add("kirana-1", "ravi@example.com", "boss", "secret-password\n"),
        "unknown role \"boss\": use owner, manager or cashier",
    );
    assert_fails_with(
        &add("kirana-1", "ravi@example.com", "cashier", "short\n"),
        "the password is too short",
    );

    let password_file = data.join("password.txt");
    std::fs::write(&password_file, "from-a-file-password\n").unwrap();
    assert_succeeds(&run(
        data,
        &[
            "user",
            "add",
            "--shop",
            "kirana-1",
            "--email",
            "ravi@example.com",
            "--role",
            "cashier",
            "--password-file",
            password_file.to_str().unwrap(),
        ],
        "",
    ));

    assert_succeeds(&run(
        data,
        &["user", "disable", "--email", "ravi@example.com"],
        "",
    ));
    assert_fails_with(
        &run(
            data,
            &["user", "disable", "--email", "nobody@example.com"],
            "",
        ),
        "no user has the email \"nobody@example.com\"",
    );
}
