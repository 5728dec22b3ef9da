use std::time::Duration;

use rcgen::string::BmpString;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer, KeyPair,
    SerialNumber, date_time_ymd,
};
use time::macros::datetime;

use super::*;

/// A fixed 2048-bit RSA test key (`openssl genpkey -algorithm RSA`), PKCS#8.
const RSA_PKCS8_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDKaMdBSCLLDw6d
0IVBz3eDHqsXvx07TmKQ1nnQf1RJ61mf18JgghN8vP2wzbQHUbRP6PDNiqDc9Yx2
WU0jHbVbCNL3AOpzNxc0GqG8S56d3mgEFB6MjltqjY9C7I/pcur9uRyR3QlZXDSz
tOQiEDzEuZEBzbfTyS/mEq3BdxgI6CxlVx/sO/GZfpoUcx3mzlkLdc8MLid02jiJ
opmAxkRw0n4xtQdgSOz2tYMpTpEPb0+vxdv6IZqFO+LtWJYKs+9X1NNEpl37lfSP
mjMrC0msnw/BUbgYMXO2GSwPKw2qk70LjDPPBLKx5FKtSvBBfKFcMXHIZLo214hv
7unSTi+3AgMBAAECggEADlWqpt5A+I3cbyNxYd5w4axZBEQuAcvkrHVECJa76sWW
11HPG56asAmCaJ8TfOE1xThYtXXNPAN31c8v6KjAoJiDYv2BnR9DBBb5aqhrAgCE
7/pXdNowHIph9voMnG/dtz0A36OpIdb8idg/FS/T3erLxjZCKpGOVDDxH/PF6VDH
sc0OnCm+BL1UH5WOoEyXGhylYYjufSZV8xV6uhRpTfBNcrQLBTieHDCJTIdHGXiW
jwJh3YanZGd5GM7XowX7XhmSboSgCKHTA5p7v5CUak7+KRjySyp82XFdJcJUzfBo
YCnodIt1qAkedgqZpUcxPvx2Oc8L4DFR7XD+uVNZYQKBgQD2Rx6qWzisaXvDYuEW
pYptPuEeWNQzMNVEFt8iH5O2rGXymChmvBEczigQrqfwo50vvAA/2wZMyRfCDp2M
F0FOtmy4jiha+z04WXkCaWfj9Gp0mPusS/pRpzTUEmQ72u2v7tC7zZ5eyQyum5Ka
H+GtX+XJtaqpmt5XMCiTW1/YewKBgQDSZlLpZse6WawC6mY48MerAbEt0o2Bf7Cm
20xgF1XQfMdnUyktVNACMjAKSOeVt12h7F2lijqU+cIpPQPSLTxxMPuG42epSMGz
A3M5wzz0TjDBiqM5rojpNsbbh26l9xLptPxMevgv+a1v5pDckqqy7X4vx7eeXelW
YfUsyQlm9QKBgHg3mUGBS/Xle9ORldyPLDZNpmhA5jyizsfw/jTTAzD9kLpOChK0
JQpRm/8gsrvlshoWBG0nRjj/RIimx8MVqvx4UjP4uLxIvcae7lH+EAeXTMvjzZ56
bBOlskT/QUxyfuoNgnjaUz9jlrw5FuQDQg92q12+PzORdI1M5dGgnfW3AoGAIldz
RwdwqDkEu4EY6EhcvsvK6KjKUg3Ofp2izLhiWGJVhcbsHKsQPJuGfddCfYxtawWS
j3eNck2F5IdB/WdGy07sbyrk+5uViiuQ/ieg5ltw19ZSKBMV48L+GEz1wX8fhif1
WmJj6ii9p1sh3+7Mj+H1y8S0ctPvRxs8EnBJ6ZUCgYEAwQF+1p6pWyVeHQFlujdf
SRQ6mqrgR4qLfpRNJqD+XNiB/3Lk1dXldraP2GudgE4GoiEzMyCtKiukW5u/CIp4
QB1nDSTJRevHmDbZE/9VFYXnESmkiPW56bjFVELSZaxnaIi0xS4LgiSmjXY9Raq3
sNWsfdqvynDhpX0eBiVzCzs=
-----END PRIVATE KEY-----
";

/// The same RSA key in PKCS#1 form (`openssl rsa -traditional`).
const RSA_PKCS1_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAymjHQUgiyw8OndCFQc93gx6rF78dO05ikNZ50H9USetZn9fC
YIITfLz9sM20B1G0T+jwzYqg3PWMdllNIx21WwjS9wDqczcXNBqhvEuend5oBBQe
jI5bao2PQuyP6XLq/bkckd0JWVw0s7TkIhA8xLmRAc2308kv5hKtwXcYCOgsZVcf
7DvxmX6aFHMd5s5ZC3XPDC4ndNo4iaKZgMZEcNJ+MbUHYEjs9rWDKU6RD29Pr8Xb
+iGahTvi7ViWCrPvV9TTRKZd+5X0j5ozKwtJrJ8PwVG4GDFzthksDysNqpO9C4wz
zwSyseRSrUrwQXyhXDFxyGS6NteIb+7p0k4vtwIDAQABAoIBAA5VqqbeQPiN3G8j
cWHecOGsWQRELgHL5Kx1RAiWu+rFltdRzxuemrAJgmifE3zhNcU4WLV1zTwDd9XP
L+iowKCYg2L9gZ0fQwQW+WqoawIAhO/6V3TaMByKYfb6DJxv3bc9AN+jqSHW/InY
PxUv093qy8Y2QiqRjlQw8R/zxelQx7HNDpwpvgS9VB+VjqBMlxocpWGI7n0mVfMV
eroUaU3wTXK0CwU4nhwwiUyHRxl4lo8CYd2Gp2RneRjO16MF+14Zkm6EoAih0wOa
e7+QlGpO/ikY8ksqfNlxXSXCVM3waGAp6HSLdagJHnYKmaVHMT78djnPC+AxUe1w
/rlTWWECgYEA9kceqls4rGl7w2LhFqWKbT7hHljUMzDVRBbfIh+Ttqxl8pgoZrwR
HM4oEK6n8KOdL7wAP9sGTMkXwg6djBdBTrZsuI4oWvs9OFl5Amln4/RqdJj7rEv6
Uac01BJkO9rtr+7Qu82eXskMrpuSmh/hrV/lybWqqZreVzAok1tf2HsCgYEA0mZS
6WbHulmsAupmOPDHqwGxLdKNgX+wpttMYBdV0HzHZ1MpLVTQAjIwCkjnlbddoexd
pYo6lPnCKT0D0i08cTD7huNnqUjBswNzOcM89E4wwYqjOa6I6TbG24dupfcS6bT8
THr4L/mtb+aQ3JKqsu1+L8e3nl3pVmH1LMkJZvUCgYB4N5lBgUv15XvTkZXcjyw2
TaZoQOY8os7H8P400wMw/ZC6TgoStCUKUZv/ILK75bIaFgRtJ0Y4/0SIpsfDFar8
eFIz+Li8SL3Gnu5R/hAHl0zL482eemwTpbJE/0FMcn7qDYJ42lM/Y5a8ORbkA0IP
dqtdvj8zkXSNTOXRoJ31twKBgCJXc0cHcKg5BLuBGOhIXL7LyuioylINzn6dosy4
YlhiVYXG7ByrEDybhn3XQn2MbWsFko93jXJNheSHQf1nRstO7G8q5PublYorkP4n
oOZbcNfWUigTFePC/hhM9cF/H4Yn9VpiY+oovadbId/uzI/h9cvEtHLT70cbPBJw
SemVAoGBAMEBftaeqVslXh0BZbo3X0kUOpqq4EeKi36UTSag/lzYgf9y5NXV5Xa2
j9hrnYBOBqIhMzMgrSorpFubvwiKeEAdZw0kyUXrx5g22RP/VRWF5xEppIj1uem4
xVRC0mWsZ2iItMUuC4Ikpo12PUWqt7DVrH3ar8pw4aV9HgYlcws7
-----END RSA PRIVATE KEY-----
";

/// A fixed P-256 test key in SEC1 form (`openssl ecparam -name prime256v1 -genkey -noout`).
const EC_SEC1_PEM: &str = "\
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEINjFaR1ZI0wfS7CROncmwfmxDVIMjAs3RRysTa2+zADSoAoGCCqGSM49
AwEHoUQDQgAEn1EtTRj4D91Hr+4ZlQaclMYbu5v4F0agLaRnBsnPRFQmN3IvmeDV
m5bxsdEVXrdqoK7xLv5N5nit8nFyZlRftQ==
-----END EC PRIVATE KEY-----
";

/// The same P-256 key in PKCS#8 form (`openssl pkcs8 -topk8 -nocrypt`), for rcgen to sign with.
const EC_PKCS8_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2MVpHVkjTB9LsJE6
dybB+bENUgyMCzdFHKxNrb7MANKhRANCAASfUS1NGPgP3Uev7hmVBpyUxhu7m/gX
RqAtpGcGyc9EVCY3ci+Z4NWblvGx0RVet2qgrvEu/k3meK3ycXJmVF+1
-----END PRIVATE KEY-----
";

fn params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
}

fn self_signed(params: &CertificateParams, key: &KeyPair) -> String {
    params.self_signed(key).unwrap().pem()
}

fn ec_pair(common_name: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    (self_signed(&params(common_name), &key), key.serialize_pem())
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = params(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
}

fn at(seconds_since_epoch: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds_since_epoch).unwrap())
}

fn bad_certificate_reason(result: Result<ParsedCertificate, Error>) -> String {
    match result {
        Err(Error::BadCertificate(reason)) => reason,
        other => panic!("expected BadCertificate, got {other:?}"),
    }
}

fn bad_key_reason(result: Result<(), Error>) -> String {
    match result {
        Err(Error::BadPrivateKey(reason)) => reason,
        other => panic!("expected BadPrivateKey, got {other:?}"),
    }
}

#[test]
fn ec_client_certificate_and_key_are_accepted() {
    let (cert, key) = ec_pair("client-ec");
    let parsed = validate_installation(
        CertificateType::Client,
        &cert,
        Some(&key),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(parsed.common_name, "client-ec");
    assert_eq!(parsed.ca, "client-ec");
    assert!(!parsed.is_ca);
    assert!(!parsed.der.is_empty());
}

#[test]
fn rsa_server_certificate_and_key_are_accepted() {
    let key = KeyPair::from_pem(RSA_PKCS8_PEM).unwrap();
    let cert = self_signed(&params("server-rsa"), &key);
    let parsed = validate_installation(
        CertificateType::Server,
        &cert,
        Some(RSA_PKCS8_PEM),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(parsed.common_name, "server-rsa");
}

#[test]
fn pkcs1_rsa_key_matches_its_certificate() {
    let key = KeyPair::from_pem(RSA_PKCS8_PEM).unwrap();
    let parsed = parse_certificate(&self_signed(&params("rsa"), &key)).unwrap();
    check_private_key(&parsed, RSA_PKCS1_PEM).unwrap();
}

#[test]
fn sec1_ec_key_matches_its_certificate() {
    let key = KeyPair::from_pem(EC_PKCS8_PEM).unwrap();
    let parsed = parse_certificate(&self_signed(&params("ec"), &key)).unwrap();
    check_private_key(&parsed, EC_SEC1_PEM).unwrap();
    check_private_key(&parsed, EC_PKCS8_PEM).unwrap();
}

#[test]
fn fields_are_read_from_a_certificate_signed_by_a_ca() {
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params("Test Root CA");
    let ca_pem = self_signed(&ca, &ca_key);
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = params("kmip-client");
    leaf.serial_number = Some(SerialNumber::from_slice(&[0x0a, 0x1b, 0xc2]));
    leaf.not_after = datetime!(2030-01-25 06:20:13 UTC);
    let leaf_pem = leaf.signed_by(&leaf_key, &issuer).unwrap().pem();

    let parsed = parse_certificate(&leaf_pem).unwrap();
    assert_eq!(parsed.common_name, "kmip-client");
    assert_eq!(parsed.serial_number, "0A1BC2");
    assert_eq!(parsed.ca, "Test Root CA");
    assert_eq!(parsed.expiry_time, "2030-01-25T06:20:13Z");
    assert!(!parsed.is_ca);

    let ca_parsed = parse_certificate(&ca_pem).unwrap();
    assert!(ca_parsed.is_ca);
    assert_eq!(ca_parsed.common_name, "Test Root CA");
    assert_eq!(ca_parsed.ca, "Test Root CA");
}

#[test]
fn serial_loses_the_der_sign_byte() {
    let key = KeyPair::generate().unwrap();
    let mut params = params("serial");
    params.serial_number = Some(SerialNumber::from_slice(&[0x8f, 0x01, 0xff]));
    let parsed = parse_certificate(&self_signed(&params, &key)).unwrap();
    assert_eq!(parsed.serial_number, "8F01FF");
    assert_eq!(serial_hex(&[0x00, 0x00]), "00");
    assert_eq!(serial_hex(&[]), "00");
}

#[test]
fn issuer_without_common_name_is_shown_as_its_dn() {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::OrganizationName, "NetApp Test");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_pem = params("leaf").signed_by(&leaf_key, &issuer).unwrap().pem();
    assert_eq!(parse_certificate(&leaf_pem).unwrap().ca, "O=NetApp Test");
}

#[test]
fn bmp_string_common_name_is_read() {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        DnValue::BmpString(BmpString::try_from("Zürich CA").unwrap()),
    );
    let parsed = parse_certificate(&self_signed(&params, &key)).unwrap();
    assert_eq!(parsed.common_name, "Zürich CA");
}

#[test]
fn ca_types_refuse_a_private_key() {
    let (cert, key) = ec_pair("ca");
    for cert_type in [
        CertificateType::ServerCa,
        CertificateType::ClientCa,
        CertificateType::RootCa,
    ] {
        assert_eq!(
            validate_installation(cert_type, &cert, Some(&key), SystemTime::now()),
            Err(Error::PrivateKeyNotAccepted)
        );
        for no_key in [None, Some(""), Some(" \n")] {
            assert!(validate_installation(cert_type, &cert, no_key, SystemTime::now()).is_ok());
        }
    }
}

#[test]
fn client_and_server_need_a_private_key() {
    let (cert, _) = ec_pair("client");
    for cert_type in [CertificateType::Client, CertificateType::Server] {
        for no_key in [None, Some(""), Some(" \r\n")] {
            assert_eq!(
                validate_installation(cert_type, &cert, no_key, SystemTime::now()),
                Err(Error::PrivateKeyMissing)
            );
        }
    }
}

#[test]
fn key_of_another_pair_is_a_mismatch() {
    let (cert, _) = ec_pair("one");
    let (_, other_key) = ec_pair("two");
    assert_eq!(
        validate_installation(
            CertificateType::Client,
            &cert,
            Some(&other_key),
            SystemTime::now()
        ),
        Err(Error::KeyMismatch)
    );
    let parsed = parse_certificate(&cert).unwrap();
    assert_eq!(
        check_private_key(&parsed, RSA_PKCS8_PEM),
        Err(Error::KeyMismatch)
    );
    assert_eq!(
        check_private_key(&parsed, EC_SEC1_PEM),
        Err(Error::KeyMismatch)
    );
}

#[test]
fn garbage_keys_are_refused_without_echoing_them() {
    let (cert, _) = ec_pair("garbage");
    let parsed = parse_certificate(&cert).unwrap();
    let secret = "c2VjcmV0IHNlY3JldCBzZWNyZXQ=";
    let cases = [
        (
            "not a key c2VjcmV0IHNlY3JldCBzZWNyZXQ=".to_string(),
            "no PEM private key found",
        ),
        (
            format!("-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"),
            "not a valid",
        ),
        (
            format!("-----BEGIN PRIVATE KEY-----\n{secret}!\n-----END PRIVATE KEY-----\n"),
            "not base64",
        ),
        (
            format!("-----BEGIN PRIVATE KEY-----\n{secret}\n"),
            "no END line",
        ),
        (
            format!("-----BEGIN SECRET {secret}-----\n{secret}\n-----END SECRET {secret}-----\n"),
            "expected a PEM PRIVATE KEY",
        ),
        (
            format!(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{secret}\n-----END ENCRYPTED PRIVATE KEY-----\n"
            ),
            "encrypted",
        ),
        (
            format!(
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\n{secret}\n-----END RSA PRIVATE KEY-----\n"
            ),
            "headers",
        ),
        (format!("{EC_SEC1_PEM}{EC_PKCS8_PEM}"), "several PEM blocks"),
        (format!("{EC_SEC1_PEM}{secret}\n"), "outside the PEM block"),
        (cert.clone(), "expected a PEM PRIVATE KEY"),
        ("=".repeat(MAX_PEM_LEN + 1), "64 KiB"),
    ];
    for (key, expected) in cases {
        let reason = bad_key_reason(check_private_key(&parsed, &key));
        assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
        assert!(!reason.contains("c2Vj"), "{reason:?} echoes the key");
        assert!(!Error::BadPrivateKey(reason).to_string().contains("c2Vj"));
    }
    // Half a real key: valid base64 and PEM, broken DER.
    let lines: Vec<&str> = RSA_PKCS8_PEM.lines().collect();
    let truncated = [&lines[..8], &lines[lines.len() - 1..]].concat().join("\n");
    assert!(bad_key_reason(check_private_key(&parsed, &truncated)).contains("not a valid"));
}

#[test]
fn garbage_certificates_are_refused() {
    let (cert, key) = ec_pair("junk");
    let cases = [
        (String::new(), "no PEM certificate found"),
        ("hello world".to_string(), "no PEM certificate found"),
        (key.clone(), "found \"PRIVATE KEY\""),
        (
            "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n".to_string(),
            "X.509",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nMI=IB\n-----END CERTIFICATE-----\n".to_string(),
            "base64",
        ),
        (format!("{cert}trailing junk\n"), "outside the PEM block"),
        (format!("junk\n{cert}"), "outside the PEM block"),
        (format!("{cert}{key}"), "found \"PRIVATE KEY\""),
        (
            cert.replace("END CERTIFICATE", "END X509 CRL"),
            "does not match",
        ),
        (cert.replace("-----END CERTIFICATE-----", ""), "no END line"),
        (
            cert.replace("-----BEGIN CERTIFICATE-----", "-----BEGIN -----"),
            "malformed",
        ),
        ("A".repeat(MAX_PEM_LEN + 1), "64 KiB"),
    ];
    for (text, expected) in cases {
        let reason = bad_certificate_reason(parse_certificate(&text));
        assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
        let result = validate_installation(
            CertificateType::Client,
            &text,
            Some(&key),
            SystemTime::now(),
        );
        assert!(matches!(result, Err(Error::BadCertificate(_))));
    }
}

#[test]
fn der_with_trailing_bytes_is_refused() {
    let (cert, _) = ec_pair("trailing");
    let mut der = parse_certificate(&cert).unwrap().der;
    der.extend_from_slice(&[0x05, 0x00]);
    assert_eq!(
        parse_der(&der).err(),
        Some(bad_certificate("unexpected data after the certificate"))
    );
}

#[test]
fn two_certificates_are_refused() {
    let (first, _) = ec_pair("first");
    let (second, _) = ec_pair("second");
    assert_eq!(
        parse_certificate(&format!("{first}\n{second}")),
        Err(Error::BadCertificate(
            "2 certificates given, expected 1".into()
        ))
    );
}

#[test]
fn crlf_and_indentation_are_accepted() {
    let (cert, key) = ec_pair("crlf");
    let cert = cert.replace('\n', "\r\n");
    let key = format!("\n  {}\n\n", key.replace('\n', "\n  "));
    let parsed = validate_installation(
        CertificateType::Client,
        &cert,
        Some(&key),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(parsed.common_name, "crlf");
}

#[test]
fn expired_certificate_is_refused() {
    let key = KeyPair::generate().unwrap();
    let mut params = params("old");
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2021, 1, 1);
    let cert = self_signed(&params, &key);
    let key = key.serialize_pem();

    assert_eq!(
        validate_installation(
            CertificateType::Client,
            &cert,
            Some(&key),
            SystemTime::now()
        ),
        Err(Error::CertificateExpired("2021-01-01T00:00:00Z".into()))
    );
    // Expired is strictly after notAfter.
    let not_after = datetime!(2021-01-01 00:00:00 UTC).unix_timestamp();
    assert!(
        validate_installation(CertificateType::Client, &cert, Some(&key), at(not_after)).is_ok()
    );
    assert!(matches!(
        validate_installation(
            CertificateType::ServerCa,
            &cert,
            None,
            at(not_after) + Duration::from_millis(1)
        ),
        Err(Error::CertificateExpired(_))
    ));
    // Parsing alone does not judge expiry.
    assert_eq!(
        parse_certificate(&cert).unwrap().expiry_time,
        "2021-01-01T00:00:00Z"
    );
}

#[test]
fn times_before_the_epoch_compare() {
    assert!(unix_nanos(UNIX_EPOCH - Duration::from_secs(1)) < 0);
    assert_eq!(
        unix_nanos(UNIX_EPOCH + Duration::from_secs(2)),
        2_000_000_000
    );
}

#[test]
fn truncated_inputs_never_panic() {
    let key = KeyPair::from_pem(EC_PKCS8_PEM).unwrap();
    let cert = self_signed(&params("prefix"), &key);
    let parsed = parse_certificate(&cert).unwrap();
    for end in 0..cert.len() {
        assert!(parse_certificate(&cert[..end]).is_err() || end >= cert.len() - 1);
    }
    for end in 0..EC_SEC1_PEM.len() {
        let _ = check_private_key(&parsed, &EC_SEC1_PEM[..end]);
    }
    for text in [
        "-----BEGIN",
        "-----BEGIN -----",
        "-----END X-----",
        "\u{0}\u{ffff}",
        "-----BEGIN A-----\n-----END A-----",
    ] {
        assert!(parse_certificate(text).is_err());
        assert!(check_private_key(&parsed, text).is_err());
    }
}
