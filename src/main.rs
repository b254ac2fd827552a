fn main() {
    print!(
        "{}",
        grant_operator::api::crds_yaml().expect("CRDs serialize")
    );
}
