"""Money as integer minor units plus an ISO 4217 code; never a float.

Minor units per currency follow Hyperswitch's own table (``common_enums::Currency``:
``is_zero_decimal_currency``, ``is_three_decimal_currency``,
``is_four_decimal_currency``), because the amount is what the router reads: 100 JPY is
``amount=100``, 1.000 KWD is ``amount=1000``. Where that table departs from ISO 4217
it wins (ISK has 2 places there, IRR and MGA none), and a code the router does not
accept (UYI, for one) is refused here rather than by the provider.
"""

from __future__ import annotations

from veza_payments._errors import PaymentsConfigurationError

ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "IRR",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
THREE_DECIMAL = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])
FOUR_DECIMAL = frozenset({"CLF"})
TWO_DECIMAL = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BMD",
        "BND",
        "BOB",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHF",
        "CNY",
        "COP",
        "CRC",
        "CUC",
        "CUP",
        "CVE",
        "CZK",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HRK",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "ISK",
        "JMD",
        "KES",
        "KGS",
        "KHR",
        "KPW",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "MAD",
        "MDL",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SLL",
        "SOS",
        "SRD",
        "SSP",
        "STD",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "USD",
        "UYU",
        "UZS",
        "VES",
        "WST",
        "XCD",
        "YER",
        "ZAR",
        "ZMW",
        "ZWL",
    ]
)
ALL_CURRENCIES = ZERO_DECIMAL | THREE_DECIMAL | FOUR_DECIMAL | TWO_DECIMAL


def exponent(currency: str) -> int:
    """Decimal places of ``currency`` (0, 2, 3, or 4 for CLF), as Hyperswitch counts them.

    Raises:
        PaymentsConfigurationError: Not an ISO 4217 currency code.
    """
    code = normalise_currency(currency)
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    if code in FOUR_DECIMAL:
        return 4
    return 2


def normalise_currency(currency: str) -> str:
    """Upper-case and validate an ISO 4217 code."""
    code = str(currency).strip().upper()
    if code not in ALL_CURRENCIES:
        msg = f"{currency!r} is not a currency Hyperswitch accepts"
        raise PaymentsConfigurationError(msg)
    return code


def check_amount(amount: object, *, field: str = "amount", allow_zero: bool = False) -> int:
    """An amount must be an ``int`` of minor units (not a float, not a bool), positive.

    Raises:
        PaymentsConfigurationError: A float, a bool, a string, or a non-positive value.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        msg = f"{field} must be an int of minor units (not {type(amount).__name__})"
        raise PaymentsConfigurationError(msg)
    if amount < 0 or (amount == 0 and not allow_zero):
        msg = f"{field} must be positive, got {amount}"
        raise PaymentsConfigurationError(msg)
    return amount


def format_amount(amount: int, currency: str) -> str:
    """Human display: ``format_amount(1050, "EUR") == "10.50 EUR"`` (exact, no float)."""
    places = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 10**places)
    text = f"{whole}.{part:0{places}d}" if places else str(whole)
    return f"{sign}{text} {normalise_currency(currency)}"
