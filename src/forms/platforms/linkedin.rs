//! LinkedIn Easy Apply: questions in `[data-test-form-element]` sections of the modal; contact
//! fields carry their meaning in long generated ids.

use super::ident;
use crate::forms::Field;

pub fn key_for(field: &Field) -> Option<&'static str> {
    let (name, id) = ident(field);
    let id = format!("{name} {id}").to_ascii_lowercase();
    if id.contains("phonenumber-nationalnumber") || id.contains("phonenumber") {
        Some("phone")
    } else if id.contains("emailaddress") {
        Some("email")
    } else if id.contains("firstname") {
        Some("first_name")
    } else if id.contains("lastname") {
        Some("last_name")
    } else {
        None
    }
}
