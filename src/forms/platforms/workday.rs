//! Workday: everything keyed by `data-automation-id` and ids such as `name--legalName--firstName`.

use super::ident;
use crate::forms::Field;

pub fn key_for(field: &Field) -> Option<&'static str> {
    let (_, id) = ident(field);
    let id = id.to_ascii_lowercase();
    Some(match id.as_str() {
        "name--legalname--firstname" => "first_name",
        "name--legalname--lastname" => "last_name",
        "email" | "emailaddress" => "email",
        "phonenumber--phonenumber" | "phone-number" => "phone",
        "phonenumber--countryphonecode" => "country",
        "phonenumber--phonetype" => "phone_device_type",
        "address--city" => "city",
        "address--addressline1" => "address",
        "address--postalcode" => "postal_code",
        "country--country" => "country",
        _ => return None,
    })
}
