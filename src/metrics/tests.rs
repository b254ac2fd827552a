//! Unit tests of the metrics: names, label values, the census and its gauges.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::census::{Census, Observed};
use super::{KindLabels, Metrics, NotReadyLabels};
use k8s_openapi::jiff::Timestamp;

fn time(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).unwrap())
}

fn ready(status: &str, reason: &str, since: i64) -> Condition {
    Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message: String::new(),
        last_transition_time: time(since),
        observed_generation: None,
    }
}

#[test]
fn census_is_counted_at_scrape_time_with_bounded_labels() {
    let metrics = Metrics::new();
    assert!(!metrics.encode().unwrap().contains("grant_operator_grants"));
    metrics.count_objects(
        "SigmaGrant",
        Box::new(|census: &mut Census| {
            let created = time(1_000);
            let synced = ready("True", "Synced", 1_100);
            let made_up = ready("False", "made up by hand", 1_200);
            let object = |name, ready| Observed {
                kind: "SigmaGrant",
                namespace: Some("analytics"),
                name,
                created: Some(&created),
                ready,
                last_sync: None,
            };
            census.row("SigmaGrant", "Applied");
            census.row("SigmaGrant", "Applied");
            census.row("SigmaGrant", "Failed");
            census.resource(object("good", Some(&synced)));
            census.resource(object("odd", Some(&made_up)));
            census.resource(object("new", None));
            census.unreadable("SigmaGrant", Some("analytics"), "skewed", Some(&created));
        }),
    );
    let text = metrics.encode().unwrap();
    for line in [
        "# TYPE grant_operator_grants gauge",
        r#"grant_operator_grants{kind="SigmaGrant",state="Applied"} 2"#,
        r#"grant_operator_grants{kind="SigmaGrant",state="Failed"} 1"#,
        "# TYPE grant_operator_resources gauge",
        r#"grant_operator_resources{kind="SigmaGrant",ready="True",reason="Synced"} 1"#,
        r#"grant_operator_resources{kind="SigmaGrant",ready="False",reason="Other"} 1"#,
        r#"grant_operator_resources{kind="SigmaGrant",ready="Unknown",reason="None"} 1"#,
        r#"grant_operator_resources{kind="SigmaGrant",ready="Unknown",reason="Unreadable"} 1"#,
        "# TYPE grant_operator_not_ready_since_timestamp_seconds gauge",
        r#"grant_operator_not_ready_since_timestamp_seconds{kind="SigmaGrant",namespace="analytics",name="odd",ready="False",reason="Other"} 1200.0"#,
        r#"grant_operator_not_ready_since_timestamp_seconds{kind="SigmaGrant",namespace="analytics",name="new",ready="Unknown",reason="None"} 1000.0"#,
        r#"grant_operator_not_ready_since_timestamp_seconds{kind="SigmaGrant",namespace="analytics",name="skewed",ready="Unknown",reason="Unreadable"} 1000.0"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains(r#"name="good""#),
        "a Ready resource has no series:\n{text}"
    );
    metrics.forget_objects("SigmaGrant");
    let text = metrics.encode().unwrap();
    assert!(!text.contains("grant_operator_grants"), "{text}");
    assert!(!text.contains("not_ready_since"), "{text}");
}

#[test]
fn the_last_successful_sync_is_the_latest_of_resources_that_sync() {
    let mut census = Census::default();
    let early = time(1_000);
    let late = time(2_000);
    let latest = time(3_000);
    let synced = ready("True", "Synced", 500);
    let failing = ready("False", "VendorUnavailable", 2_500);
    let suspended = ready("False", "Suspended", 100);
    let expired = ready("False", "Expired", 100);
    let grant = |kind, name, ready, last_sync| Observed {
        kind,
        namespace: Some("ns"),
        name,
        created: None,
        ready: Some(ready),
        last_sync: Some(last_sync),
    };
    census.resource(grant("SigmaGrant", "a", &synced, &early));
    census.resource(grant("SigmaGrant", "b", &failing, &late));
    // Suspended and expired resources stop syncing on purpose: never counted.
    census.resource(grant("SigmaGrant", "c", &suspended, &latest));
    census.resource(grant("SigmaGrant", "d", &expired, &latest));
    census.resource(grant("DremioGrant", "e", &suspended, &latest));
    assert_eq!(
        census.last_sync,
        BTreeMap::from([(KindLabels { kind: "SigmaGrant" }, 2_000.0)])
    );
    // A provider (no lastSyncTime) without creation time or condition: counted, no series.
    census.resource(Observed {
        kind: "ClusterGrantProvider",
        namespace: None,
        name: "shared",
        created: None,
        ready: None,
        last_sync: None,
    });
    assert_eq!(census.not_ready.len(), 4, "{:?}", census.not_ready);
    assert_eq!(
        census.not_ready[&NotReadyLabels {
            kind: "SigmaGrant",
            namespace: Some("ns".into()),
            name: "b".into(),
            ready: "False",
            reason: "VendorUnavailable",
        }],
        2_500.0
    );
}

#[test]
fn the_default_sync_interval_is_reported_while_the_controllers_run() {
    let metrics = Metrics::new();
    assert!(!metrics.encode().unwrap().contains("default_sync_interval"));
    metrics.set_default_sync_interval(Duration::from_secs(600));
    let text = metrics.encode().unwrap();
    assert!(
        text.contains("\ngrant_operator_default_sync_interval_seconds 600.0\n"),
        "{text}"
    );
    metrics.forget_all_objects();
    assert!(!metrics.encode().unwrap().contains("default_sync_interval"));
}

#[test]
fn vendor_request_durations_have_buckets_from_25_ms_to_60_s() {
    let metrics = Metrics::new();
    metrics.vendor_call_duration("sigma", "list_grants", Duration::from_millis(70));
    let text = metrics.encode().unwrap();
    for line in [
        "# TYPE grant_operator_vendor_request_duration_seconds histogram",
        r#"grant_operator_vendor_request_duration_seconds_bucket{le="0.05",vendor="sigma",operation="list_grants"} 0"#,
        r#"grant_operator_vendor_request_duration_seconds_bucket{le="0.1",vendor="sigma",operation="list_grants"} 1"#,
        r#"grant_operator_vendor_request_duration_seconds_bucket{le="60.0",vendor="sigma",operation="list_grants"} 1"#,
        r#"grant_operator_vendor_request_duration_seconds_count{vendor="sigma",operation="list_grants"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
