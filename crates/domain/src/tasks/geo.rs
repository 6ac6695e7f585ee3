//! Points on the Earth (WGS 84, SRID 4326) as the API takes them.

use crate::users::InvalidValue;

/// A validated latitude/longitude pair in degrees; serialised as `{lat, lng}`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct GeoPoint {
    lat: f64,
    lng: f64,
}

impl GeoPoint {
    pub fn new(lat: f64, lng: f64) -> Result<Self, (&'static str, InvalidValue)> {
        let lat = Self::latitude(lat).map_err(|error| ("lat", error))?;
        let lng = Self::longitude(lng).map_err(|error| ("lng", error))?;
        Ok(Self { lat, lng })
    }

    /// A latitude in degrees, -90..=90.
    pub fn latitude(lat: f64) -> Result<f64, InvalidValue> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(InvalidValue("must be between -90 and 90"));
        }
        Ok(lat)
    }

    /// A longitude in degrees, -180..=180.
    pub fn longitude(lng: f64) -> Result<f64, InvalidValue> {
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err(InvalidValue("must be between -180 and 180"));
        }
        Ok(lng)
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn lng(self) -> f64 {
        self.lng
    }

    /// Great-circle distance in metres on a sphere of the Earth's mean radius.
    pub fn haversine_m(self, other: GeoPoint) -> f64 {
        const EARTH_RADIUS_M: f64 = 6_371_008.8;
        let (phi1, phi2) = (self.lat.to_radians(), other.lat.to_radians());
        let dphi = (other.lat - self.lat).to_radians();
        let dlambda = (other.lng - self.lng).to_radians();
        let a = (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().asin()
    }
}

/// The reported accuracy of a position in metres: 0..=100,000.
pub fn parse_accuracy(accuracy_m: f64) -> Result<f64, InvalidValue> {
    if accuracy_m.is_finite() && (0.0..=100_000.0).contains(&accuracy_m) {
        Ok(accuracy_m)
    } else {
        Err(InvalidValue("must be between 0 and 100000 metres"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_range_checked() {
        assert!(GeoPoint::new(40.4168, -3.7038).is_ok());
        assert!(GeoPoint::new(90.0, 180.0).is_ok());
        assert_eq!(GeoPoint::new(90.1, 0.0).map_err(|e| e.0), Err("lat"));
        assert_eq!(GeoPoint::new(0.0, -180.5).map_err(|e| e.0), Err("lng"));
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
        assert!(parse_accuracy(-1.0).is_err() && parse_accuracy(f64::INFINITY).is_err() && parse_accuracy(5.0).is_ok());
    }

    #[test]
    fn haversine_matches_known_distances() {
        let madrid = GeoPoint::new(40.4168, -3.7038).expect("valid");
        let barcelona = GeoPoint::new(41.3874, 2.1686).expect("valid");
        let distance = madrid.haversine_m(barcelona);
        assert!((distance - 505_000.0).abs() < 5_000.0, "{distance}");
        assert_eq!(madrid.haversine_m(madrid), 0.0);
    }
}
