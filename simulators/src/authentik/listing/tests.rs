//! Listing semantics: DRF page numbers, the page-size cap, the filters, and
//! the promise that answering from the indexes gives exactly what a scan of
//! every group in name order would.

use super::super::model::GroupTable;
use super::*;

fn table(n: usize) -> GroupTable {
    let mut table = GroupTable::default();
    for i in 0..n {
        let mut attributes = Map::new();
        attributes.insert("i".into(), json!(i));
        attributes.insert("nested".into(), json!({"even": i % 2 == 0}));
        table
            .insert(&format!("group-{i:03}"), attributes)
            .expect("insert");
    }
    table
}

fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn names(page: &Page) -> Vec<String> {
    page.items.iter().map(|g| g.name.clone()).collect()
}

#[test]
fn pages_follow_drf_page_numbers() {
    let table = table(250);
    let page = list(&table, &query(&[("page", "3")]), false).expect("page 3");
    assert_eq!(page.items.len(), 50);
    assert_eq!(
        page.pagination,
        json!({"next": 0, "previous": 2, "count": 250, "current": 3,
               "total_pages": 3, "start_index": 201, "end_index": 250})
    );
    assert_eq!(names(&page)[0], "group-200");
    let first = list(&table, &query(&[("page_size", "0")]), true).expect("page 1");
    assert_eq!(
        first.items.len(),
        DEFAULT_PAGE_SIZE,
        "invalid page_size falls back"
    );
    assert_eq!(first.pagination["next"], json!(2.0));
    let last = list(&table, &query(&[("page", "last")]), false).expect("last");
    assert_eq!(last.pagination["current"], json!(3));
    assert_eq!(
        list(&table, &query(&[("page", "4")]), false).err(),
        Some(ListError::InvalidPage)
    );
}

#[test]
fn page_size_is_capped_at_the_servers_maximum() {
    let table = table(250);
    let page = list(&table, &query(&[("page_size", "500")]), false).expect("page");
    assert_eq!(page.items.len(), MAX_PAGE_SIZE);
    assert_eq!(page.pagination["total_pages"], json!(3));
    let small = list(&table, &query(&[("page_size", "7"), ("page", "2")]), false).expect("page");
    assert_eq!(names(&small)[0], "group-007");
    for invalid in ["-3", "x", ""] {
        let page = list(&table, &query(&[("page_size", invalid)]), false).expect("page");
        assert_eq!(page.items.len(), DEFAULT_PAGE_SIZE, "{invalid:?}");
    }
}

#[test]
fn empty_listing_has_one_empty_page() {
    let empty = GroupTable::default();
    let page = list(&empty, &HashMap::new(), false).expect("page");
    assert_eq!(page.pagination["total_pages"], json!(1));
    assert_eq!(page.pagination["start_index"], json!(0));
    let three = table(3);
    let none = list(&three, &query(&[("attributes", r#"{"k": "v"}"#)]), false).expect("page");
    assert_eq!(
        (none.items.len(), none.pagination["count"].clone()),
        (0, json!(0))
    );
}

#[test]
fn attribute_filter_matches_nested_keys_and_drops_malformed_lookups() {
    let table = table(10);
    let count = |q: &str| list(&table, &query(&[("attributes", q)]), false).map(|p| p.items.len());
    assert_eq!(count(r#"{"i": 3}"#), Ok(1));
    assert_eq!(count(r#"{"nested__even": true}"#), Ok(5));
    assert_eq!(
        count(r#"{"i__in": [1, 2]}"#),
        Ok(10),
        "a failing lookup returns every group"
    );
    assert_eq!(count(r#"{"i": 3, "nested__": 1}"#), Ok(10));
    assert!(matches!(count("{nope"), Err(ListError::BadRequest(_))));
    assert!(matches!(count("[1]"), Err(ListError::BadRequest(_))));
}

#[test]
fn name_filter_is_exact_and_case_sensitive() {
    let table = table(3);
    let count = |name: &str| list(&table, &query(&[("name", name)]), false).map(|p| p.items.len());
    assert_eq!(count("group-001"), Ok(1));
    assert_eq!(count("GROUP-001"), Ok(0));
    assert_eq!(count("group-00"), Ok(0), "not a prefix match");
}

/// Groups with the attributes the provisioner filters on, mixed with
/// foreign and non-string ones.
fn tenant_table() -> GroupTable {
    let mut table = GroupTable::default();
    for i in 0..300usize {
        let mut attributes = Map::new();
        if i % 3 != 0 {
            attributes.insert("dezky_managed_by".into(), json!("dezky-provisioner"));
            attributes.insert("dezky_tenant_id".into(), json!(format!("t{}", i % 11)));
        }
        attributes.insert("n".into(), json!(i % 4));
        attributes.insert(
            "meta".into(),
            json!({"tier": if i % 5 == 0 { "gold" } else { "free" }}),
        );
        let group = table
            .insert(&format!("{}-{i:03}", ["b", "a", "C"][i % 3]), attributes)
            .expect("insert");
        if i % 7 == 0 {
            table
                .modify(group.pk, |g| g.is_superuser = true)
                .expect("flag");
        }
    }
    table
}

/// Every page of `pairs` with page size 7, concatenated.
fn all_pages(table: &GroupTable, pairs: &[(&str, &str)]) -> Vec<String> {
    let mut seen = Vec::new();
    for page in 1.. {
        let mut q = query(pairs);
        q.insert("page_size".into(), "7".into());
        q.insert("page".into(), page.to_string());
        let page = list(table, &q, false).expect("page");
        seen.extend(names(&page));
        if page.pagination["next"] == json!(0) {
            return seen;
        }
    }
    unreachable!()
}

#[test]
fn index_answers_are_exactly_what_a_scan_in_name_order_gives() {
    let table = tenant_table();
    let cases: &[&[(&str, &str)]] = &[
        &[],
        &[("attributes", r#"{"dezky_managed_by": "dezky-provisioner"}"#)],
        &[("attributes", r#"{"dezky_tenant_id": "t3"}"#)],
        &[(
            "attributes",
            r#"{"dezky_managed_by": "dezky-provisioner", "dezky_tenant_id": "t4"}"#,
        )],
        &[("attributes", r#"{"dezky_tenant_id": "t4", "n": 1}"#)],
        &[("attributes", r#"{"dezky_tenant_id": "nobody"}"#)],
        &[(
            "attributes",
            r#"{"dezky_tenant_id": "t4", "meta__tier": "gold"}"#,
        )],
        &[("attributes", r#"{"n": 2}"#)],
        &[("attributes", r#"{"dezky_tenant_id__in": ["t1"]}"#)],
        &[("attributes", r#"{"dezky_tenant_id": 3}"#)],
        &[
            ("attributes", r#"{"dezky_tenant_id": "t2"}"#),
            ("is_superuser", "true"),
        ],
        &[
            ("attributes", r#"{"dezky_tenant_id": "t2"}"#),
            ("search", "A-"),
        ],
        &[
            ("name", "a-001"),
            ("attributes", r#"{"dezky_tenant_id": "t1"}"#),
        ],
        &[
            ("name", "a-001"),
            ("attributes", r#"{"dezky_tenant_id": "t2"}"#),
        ],
        &[("is_superuser", "false")],
        &[("search", "c-2")],
    ];
    for pairs in cases {
        let filters = Filters::parse(&query(pairs)).expect("filters");
        let scanned: Vec<String> = table
            .sorted()
            .into_iter()
            .filter(|g| filters.matches(g))
            .map(|g| g.name.clone())
            .collect();
        let listed = all_pages(&table, pairs);
        assert_eq!(listed, scanned, "{pairs:?}");
        let count = list(&table, &query(pairs), false).expect("page").pagination["count"].clone();
        assert_eq!(count, json!(scanned.len()), "{pairs:?}");
    }
    let managed = all_pages(&table, cases[1]);
    assert_eq!(managed.len(), 200, "the cases are not vacuous");
    assert!(managed.windows(2).all(|w| w[0] < w[1]), "ordered by name");
}
