use std::collections::BTreeSet;

use reqwest::Method;

use crate::support::TestApp;

#[test]
fn the_openapi_document_describes_exactly_the_routes_the_router_serves() {
    let served: BTreeSet<_> = airsync_api::served_routes()
        .into_iter()
        .map(|(verb, path)| (verb, path.to_owned()))
        .collect();
    let documented: BTreeSet<_> = airsync_api::openapi::documented_operations()
        .into_iter()
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    assert_eq!(
        served.len(),
        airsync_api::served_routes().len(),
        "a route is registered twice"
    );
}

#[test]
fn every_documented_operation_lists_its_path_parameters_and_errors() {
    let document = airsync_api::openapi::document();
    for (verb, path) in airsync_api::openapi::documented_operations() {
        let operation = &document["paths"][path.as_str()][verb.as_openapi()];
        assert!(operation.is_object(), "{verb:?} {path} missing");
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            let listed = operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == name && p["in"] == "path");
            assert!(
                listed,
                "{verb:?} {path} does not list path parameter {name}"
            );
        }
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.contains_key("500"));
        let public = airsync_api::openapi::is_public(verb, &path);
        assert_eq!(
            responses.contains_key("401"),
            !public || path.contains("/auth/"),
            "{verb:?} {path}: 401 documented wrongly"
        );
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{verb:?} {path} has no success answer"
        );
    }
}

#[test]
fn every_operation_has_its_own_id_and_a_one_line_summary() {
    let document = airsync_api::openapi::document();
    let mut ids = BTreeSet::new();
    for (verb, path) in airsync_api::openapi::documented_operations() {
        let operation = &document["paths"][path.as_str()][verb.as_openapi()];
        let id = operation["operationId"].as_str().expect("an id");
        assert!(ids.insert(id.to_owned()), "{id} is used twice");
        let summary = operation["summary"].as_str().expect("a summary");
        assert!(
            !summary.contains('\n') && summary.len() <= 80,
            "{verb:?} {path}: {summary:?}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_is_served_without_signing_in() {
    let app = TestApp::start().await;
    let document = app
        .call(Method::GET, "/api/openapi.json", None, None, 200)
        .await;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document, airsync_api::openapi::document());
}
