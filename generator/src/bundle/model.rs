//! The bundle as Rust types. Deserialised only after the JSON has passed the schema, so
//! these types mirror `docs/bundle.schema.json` and never need to explain errors.

use serde::{Deserialize, Serialize};

/// The whole bundle.
#[derive(Debug, Clone, Deserialize)]
pub struct Bundle {
    /// Site-wide settings.
    pub site: SiteSettings,
    /// Articles, pages, FAQ pages and review pages.
    pub pages: Vec<Page>,
    /// Products, one page each.
    pub products: Vec<Product>,
    /// The business behind the site, if any.
    pub business: Option<Business>,
    /// Customer reviews of the business or its products.
    pub reviews: Vec<Review>,
}

/// `site`.
#[derive(Debug, Clone, Deserialize)]
pub struct SiteSettings {
    pub title: String,
    pub base_url: String,
    pub description: String,
    pub language: String,
    pub author: Option<String>,
    pub business_type: Option<String>,
    pub home_body: Option<String>,
    pub hero_image: Option<Image>,
}

/// What a page is.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A dated post under `/blog/`.
    Article,
    /// A standalone page at `/SLUG/`.
    Page,
    /// A questions-and-answers page at `/SLUG/`.
    Faq,
    /// A review page under `/reviews/`.
    Review,
}

/// One page.
#[derive(Debug, Clone, Deserialize)]
pub struct Page {
    pub kind: Kind,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub date: Option<String>,
    pub tags: Vec<String>,
    pub categories: Vec<String>,
    pub body: String,
    pub faqs: Vec<Faq>,
    pub images: Vec<Image>,
    pub review: Option<PageReview>,
}

/// One question and answer.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Faq {
    pub question: String,
    pub answer: String,
}

/// One image with its alternative text.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Image {
    pub src: String,
    pub alt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// What a review page reviews.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PageReview {
    pub item: String,
    pub rating: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// One product.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub slug: String,
    pub image: Option<String>,
    pub image_alt: Option<String>,
    pub price: Option<String>,
    pub currency: Option<String>,
    pub reviews: Vec<ProductReview>,
}

/// One review inside a product.
#[derive(Debug, Clone, Deserialize)]
pub struct ProductReview {
    pub date: Option<String>,
}

/// The business.
#[derive(Debug, Clone, Deserialize)]
pub struct Business {
    pub image: Option<String>,
    pub image_alt: Option<String>,
    pub opening_hours: Vec<OpeningHours>,
}

/// Days sharing opening hours.
#[derive(Debug, Clone, Deserialize)]
pub struct OpeningHours {
    pub opens: String,
    pub closes: String,
}

/// One site-wide review.
#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    pub date: Option<String>,
    pub product: Option<String>,
}
