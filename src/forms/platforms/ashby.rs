//! Ashby: `_systemfield_*` names for the standard fields, UUID ids for custom questions, and an
//! "autofill from resume" upload that is not the resume field.

use super::ident;
use crate::forms::Field;

pub fn key_for(field: &Field) -> Option<&'static str> {
    let (name, id) = ident(field);
    let key = if name.starts_with("_systemfield_") { name } else { id };
    Some(match key {
        "_systemfield_name" => "full_name",
        "_systemfield_email" => "email",
        "_systemfield_phone" => "phone",
        "_systemfield_location" => "location",
        "_systemfield_resume" => "resume",
        "_systemfield_linkedin" => "linkedin_url",
        _ => return None,
    })
}
