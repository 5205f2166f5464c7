//! JSON-LD: valid JSON, and the properties each schema.org type needs for rich results.

use serde_json::Value;

/// Required properties: each inner list is "one of these".
type Required = &'static [&'static [&'static str]];

const ARTICLES: &[&str] = &[
    "Article",
    "BlogPosting",
    "NewsArticle",
    "TechArticle",
    "Report",
    "ScholarlyArticle",
    "AnalysisNewsArticle",
    "ReportageNewsArticle",
    "OpinionNewsArticle",
    "LiveBlogPosting",
];

const ORGANIZATIONS: &[&str] = &[
    "Organization",
    "Corporation",
    "NGO",
    "OnlineBusiness",
    "OnlineStore",
    "EducationalOrganization",
    "GovernmentOrganization",
    "NewsMediaOrganization",
    "SportsOrganization",
    "MedicalOrganization",
    "Airline",
    "Consortium",
    "LibrarySystem",
    "PerformingGroup",
    "ResearchOrganization",
    "WorkersUnion",
];

/// LocalBusiness and its common schema.org subtypes.
const LOCAL_BUSINESSES: &[&str] = &[
    "LocalBusiness",
    "AnimalShelter",
    "AutomotiveBusiness",
    "AutoRepair",
    "AutoDealer",
    "ChildCare",
    "Dentist",
    "DryCleaningOrLaundry",
    "EmergencyService",
    "EmploymentAgency",
    "EntertainmentBusiness",
    "FinancialService",
    "AccountingService",
    "FoodEstablishment",
    "Bakery",
    "BarOrPub",
    "Brewery",
    "CafeOrCoffeeShop",
    "Distillery",
    "FastFoodRestaurant",
    "IceCreamShop",
    "Restaurant",
    "Winery",
    "GovernmentOffice",
    "HealthAndBeautyBusiness",
    "BeautySalon",
    "DaySpa",
    "HairSalon",
    "NailSalon",
    "HomeAndConstructionBusiness",
    "Electrician",
    "GeneralContractor",
    "HVACBusiness",
    "Locksmith",
    "MovingCompany",
    "Plumber",
    "RoofingContractor",
    "InternetCafe",
    "LegalService",
    "Attorney",
    "Notary",
    "Library",
    "LodgingBusiness",
    "BedAndBreakfast",
    "Campground",
    "Hostel",
    "Hotel",
    "Motel",
    "Resort",
    "MedicalBusiness",
    "Optician",
    "Pharmacy",
    "Physician",
    "ProfessionalService",
    "RealEstateAgent",
    "RecyclingCenter",
    "SelfStorage",
    "ShoppingCenter",
    "SportsActivityLocation",
    "ExerciseGym",
    "Store",
    "BikeStore",
    "BookStore",
    "ClothingStore",
    "ComputerStore",
    "ConvenienceStore",
    "DepartmentStore",
    "ElectronicsStore",
    "Florist",
    "FurnitureStore",
    "GardenStore",
    "GroceryStore",
    "HardwareStore",
    "HobbyShop",
    "HomeGoodsStore",
    "JewelryStore",
    "LiquorStore",
    "MensClothingStore",
    "MobilePhoneStore",
    "MusicStore",
    "OfficeEquipmentStore",
    "OutletStore",
    "PawnShop",
    "PetStore",
    "ShoeStore",
    "SportingGoodsStore",
    "TireShop",
    "ToyStore",
    "WholesaleStore",
    "TouristInformationCenter",
    "TravelAgency",
];

/// Requirements of a type for a top-level item (or a member of `@graph`).
fn top_level(ty: &str) -> Required {
    match ty {
        "Product" => &[&["name"], &["offers", "review", "aggregateRating"]],
        "FAQPage" => &[&["mainEntity"]],
        "BreadcrumbList" => &[&["itemListElement"]],
        "WebSite" => &[&["name"], &["url"]],
        "Review" => &[&["itemReviewed"]],
        t if ARTICLES.contains(&t) => &[&["headline"]],
        t if LOCAL_BUSINESSES.contains(&t) => &[&["name"], &["address"]],
        t if ORGANIZATIONS.contains(&t) => &[&["name"], &["url"]],
        _ => &[],
    }
}

/// Requirements of the offers of a Product (an Offer elsewhere, say a service a
/// LocalBusiness `makesOffer`, needs no price).
fn product_offer(ty: &str) -> Required {
    match ty {
        "Offer" => &[&["price", "priceSpecification"]],
        "AggregateOffer" => &[&["lowPrice"], &["priceCurrency"]],
        _ => &[],
    }
}

/// Requirements of a type wherever it appears (nested parts of rich results).
fn anywhere(ty: &str) -> Required {
    match ty {
        "AggregateRating" => &[&["ratingValue"], &["ratingCount", "reviewCount"]],
        "Review" => &[&["author"], &["reviewRating"]],
        "Rating" => &[&["ratingValue"]],
        "Question" => &[&["name"], &["acceptedAnswer"]],
        "Answer" => &[&["text"]],
        "ListItem" => &[&["position"], &["name", "item"]],
        _ => &[],
    }
}

/// Checks one script's text; returns (rule, message) problems.
pub(crate) fn check(text: &str) -> Vec<(&'static str, String)> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return vec![("jsonld-invalid", format!("not valid JSON: {e}"))],
    };
    let mut out = Vec::new();
    for item in top_items(&value) {
        visit(item, Place::Top, "", &mut out);
    }
    out
}

/// Where an item sits, which decides what it needs.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    /// A top-level item or a member of `@graph`.
    Top,
    /// The `offers` of a Product.
    ProductOffer,
    /// Anywhere else.
    Nested,
}

/// The items of a script: an object, an array of them, or a `@graph`.
fn top_items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().flat_map(top_items).collect(),
        Value::Object(o) => match o.get("@graph") {
            Some(g) => {
                let mut items = top_items(g);
                if o.contains_key("@type") {
                    items.push(v);
                }
                items
            }
            None => vec![v],
        },
        _ => Vec::new(),
    }
}

/// A type name without a schema.org prefix (`https://schema.org/Product` -> `Product`).
fn short(s: &str) -> &str {
    s.rsplit(['/', ':', '#']).next().unwrap_or(s)
}

/// Type names of an item, without a schema.org prefix.
fn types(o: &serde_json::Map<String, Value>) -> Vec<&str> {
    match o.get("@type") {
        Some(Value::String(s)) => vec![short(s)],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(short).collect(),
        _ => Vec::new(),
    }
}

fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

fn visit(v: &Value, place: Place, at: &str, out: &mut Vec<(&'static str, String)>) {
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                visit(x, place, &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            let types = types(o);
            for &ty in &types {
                let mut req: Vec<&[&str]> = anywhere(ty).to_vec();
                match place {
                    Place::Top => req.extend_from_slice(top_level(ty)),
                    Place::ProductOffer => req.extend_from_slice(product_offer(ty)),
                    Place::Nested => {}
                }
                for one_of in req {
                    if !one_of.iter().any(|p| present(o.get(*p))) {
                        let what = one_of.join(" or ");
                        let place = if at.is_empty() {
                            String::new()
                        } else {
                            format!(" (at {at})")
                        };
                        out.push((
                            "jsonld-missing-property",
                            format!("{ty}{place} has no {what}"),
                        ));
                    }
                }
            }
            let product = types.contains(&"Product");
            for (k, x) in o {
                if !k.starts_with('@') {
                    let place = if product && k == "offers" {
                        Place::ProductOffer
                    } else {
                        Place::Nested
                    };
                    visit(x, place, &format!("{at}.{k}"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<String> {
        check(text).into_iter().map(|(_, m)| m).collect()
    }

    #[test]
    fn invalid_json() {
        let r = check("{\"@type\": ");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, "jsonld-invalid");
    }

    #[test]
    fn required_properties_by_type() {
        assert!(
            rules(r#"{"@type":"Product","name":"Tea","offers":{"@type":"Offer","price":"3"}}"#)
                .is_empty()
        );
        assert_eq!(
            rules(r#"{"@type":"Product","name":"Tea"}"#),
            vec!["Product has no offers or review or aggregateRating"]
        );
        assert_eq!(
            rules(r#"{"@type":"Product","name":"T","offers":{"@type":"Offer"}}"#),
            vec!["Offer (at .offers) has no price or priceSpecification"]
        );
        assert_eq!(
            rules(r#"[{"@type":"BlogPosting"},{"@type":"schema:Bakery","name":"B"}]"#),
            vec!["BlogPosting has no headline", "Bakery has no address"]
        );
        assert_eq!(
            rules(r#"{"@graph":[{"@type":["Organization"],"name":"O","url":""}]}"#),
            vec!["Organization has no url"]
        );
        assert_eq!(
            rules(
                r#"{"@type":"Product","name":"T","offers":[{"@type":"AggregateOffer","lowPrice":1}]}"#
            ),
            vec!["AggregateOffer (at .offers[0]) has no priceCurrency"]
        );
        // An Offer outside a Product (a service a business offers) needs no price.
        assert!(
            rules(r#"{"@type":"Bakery","name":"B","address":"A","makesOffer":[{"@type":"Offer","itemOffered":{"@type":"Service","name":"Catering"}}]}"#)
                .is_empty()
        );
        // A nested Organization (publisher) needs no url.
        assert!(
            rules(r#"{"@type":"Article","headline":"H","publisher":{"@type":"Organization","name":"P"}}"#)
                .is_empty()
        );
    }
}
