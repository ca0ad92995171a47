//! The throwaway MariaDB helper ([`ep_terraform_tests::mariadb`]): start, create a database,
//! query over TCP with a password, refuse a wrong password, stop cleanly.

use ep_terraform_tests::mariadb::{MariaDb, MariaDbOptions};

#[test]
fn start_create_query_stop() {
    let mut db = MariaDb::start(MariaDbOptions::default()).expect("start MariaDB");
    assert!(db.port() > 0);
    db.query("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, name VARCHAR(20)); INSERT INTO shop.t VALUES (1,'a'),(2,'b');")
        .expect("create");
    assert_eq!(
        db.query("SELECT name FROM shop.t ORDER BY id")
            .expect("query"),
        "a\nb"
    );
    // Bound to loopback only, over TCP.
    let bind = db
        .query("SELECT @@bind_address, @@port, @@log_bin")
        .expect("vars");
    assert_eq!(bind, format!("127.0.0.1\t{}\t0", db.port()));

    // A wrong password is refused.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.cnf");
    db.write_option_file(&bad, "root", "not-the-password")
        .expect("option file");
    let err = db
        .query_as(&bad, "SELECT 1")
        .expect_err("wrong password must fail");
    assert!(err.to_string().contains("Access denied"), "{err}");
    assert!(
        !err.to_string().contains(db.root_password()),
        "the password must not appear in errors"
    );

    let data = db.data_dir();
    db.stop();
    assert!(!db.is_running());
    // A clean shutdown removes the pid file and leaves the InnoDB files consistent.
    assert!(data.join("ibdata1").exists());
    assert!(!data.parent().expect("parent").join("mariadbd.pid").exists());
}

#[test]
fn two_servers_side_by_side() {
    let a = MariaDb::start(MariaDbOptions::default()).expect("a");
    let b = MariaDb::start(MariaDbOptions::default()).expect("b");
    assert_ne!(a.port(), b.port());
    a.query("CREATE DATABASE only_in_a").expect("create");
    assert_eq!(
        b.query("SHOW DATABASES LIKE 'only_in_a'").expect("show"),
        ""
    );
}
