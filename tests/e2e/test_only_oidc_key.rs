//! TEST-ONLY RSA key for the fake Google OIDC provider. Generated once with
//! `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048` and converted to PKCS#1 DER;
//! it signs ID tokens in tests and protects nothing. Never use it anywhere else.

/// The private key, PKCS#1 DER, base64.
pub const PRIVATE_PKCS1_DER_B64: &str = concat!(
    "MIIEogIBAAKCAQEA2VCFX7+ZW/hW8EcSfL5OGnXncxv7QOb70WY7Rwn2jzo0bnQwvz8WnA1QOoS3mpV0KKWRnCQYKOR3mk81",
    "B5ia+X78HzroUfffqcxcIJGpEo/YOHfme2vxHBmoaA3fuPQ6VjJZLnshx00fdc0+7W6n4pqpe8K9JcxsQMSdAkH11G1kxWLz",
    "sjf05mR5R5tpQ44kknu74QcXk3WT8WLxje0DL3kF8tR1UOvj5Gwz0xyIwuKfBR+Iv68qMjoJahK426vvEMiNrcKXpCvZDvMW",
    "85fUj2GTmC97g0AojuChamQynmBRaz/EyN3y4J4Cs4TAeTdS0pk/5gXoKl236f3iayOfoQIDAQABAoIBAAungH+ctuIdH2HO",
    "GJ+3/62g78NXQieTkPhZ6IlBb4ee3ND6SjhMxIRPR84w7+fKZsBcoMJ5l7zEWTsH+cAT3xEiTkMegExlDrRR0V8DG3NzY2p5",
    "LlMlfCNq/NfCZrfJ4UGzfDTnRZh6pQVG9z5PK5HA2aCu1kCrWzgzUyLxMU3YYWDUAsrj0gwyvX+VB2LDWIW9NOho/LeNbRAP",
    "jYHMs/xXkJ5bCvK8IXoHeev4cu4Q5gsgzKL236fQwkb9hUVUNPS1ULGfBS/qFttFsfU4ga5U+igbk3tltFWdzcWkoO3uTCM0",
    "PA9oKO3SkxxCUle4R0nqILHcBaRgur0MMPfRHUECgYEA9zc20F2uQxG74fGH0RZFC1osgVNa1AaR7OEOkZPyV5dUZfSQd1ae",
    "5NLj+HIQxJzMCxJ06LUHOkhZ7Unudc33xy5eUi4jkDMNeNaDGlKtKCz7jSJ2ddUaWCHO3lHw8xheXsKfQJIEZr2aRleJc+hq",
    "PFgxoX5eN3kdtE9u+XSGYOMCgYEA4QlQAHK+v9Bs1ny9PFHL94nb2vhEK20StZ7BUquKwj5XvE7+jkLRKC+Rp+YeGrDhcnDO",
    "9si/1ND7u5wT1IVwM6qBJaCpaQZXw6qCclDoOnQr6ez0AIK/Rz/Z9uYpvM/favlmsDv7IBh3CuonTDkCxL2Bpndu0Ofyxf/U",
    "+op3+KsCgYBBpZTVsfrDbqMgtZ2mRS6ifBiTYwocgX4glAblW48f+Vx9EnuGZScehm3pHIkdXLHGQulunhvEO1A99cLv33jr",
    "mIGNexkQgq4SJ4x64fd/Uqqd6MfiNGuheaDQYpwEQbVVnoLhh6TJj5G3Gimy8MW9LoJHayIjwvLDXdCPR4UjlwKBgEDW0RE/",
    "/ov//swSJugxXUaWlx1ReTrV85UXB/bM7G8pTVg5nojY4bDle99Xo4bnPh4eONPMZdFo4Y9d2izawchxMULpNsbHCBSdlXZg",
    "r3jgLiL5nhhjk79wu1mzWYVIk8Qb1iWjMqk9w1cGvonsx0pum+Od9/UDT+US4IfLy+N/AoGAB/iaXT1DTdC9FLV73umH53e1",
    "mQeoMSdcB8/aej/PDEN9wNVSXMLPw5i0nhigdVuYUp9I2Oawu6jO7YJBOIBr1dWWHofz1v4PTRntuMwbXwvgB6dBmLsN0EQx",
    "kZVsc3y6iiKq4AT7Ty0X4PmOfnEqLQxEuDjswXnA601Q04hZ6p0=",
);

/// The public modulus, base64url without padding (the JWK `n`).
pub const MODULUS_B64URL: &str = "2VCFX7-ZW_hW8EcSfL5OGnXncxv7QOb70WY7Rwn2jzo0bnQwvz8WnA1QOoS3mpV0KKWRnCQYKOR3mk81B5ia-X78HzroUfffqcxcIJGpEo_YOHfme2vxHBmoaA3fuPQ6VjJZLnshx00fdc0-7W6n4pqpe8K9JcxsQMSdAkH11G1kxWLzsjf05mR5R5tpQ44kknu74QcXk3WT8WLxje0DL3kF8tR1UOvj5Gwz0xyIwuKfBR-Iv68qMjoJahK426vvEMiNrcKXpCvZDvMW85fUj2GTmC97g0AojuChamQynmBRaz_EyN3y4J4Cs4TAeTdS0pk_5gXoKl236f3iayOfoQ";

/// The public exponent 65537 (the JWK `e`).
pub const EXPONENT_B64URL: &str = "AQAB";
