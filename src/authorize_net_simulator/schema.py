"""Schema tables for the requests the simulator supports, transcribed from the official AnetApiSchema.xsd.

The repository does not ship the XSD; these tables carry what validation needs (element order,
cardinality, choices and facets). `tests/unit/simulator/test_schema_tables.py` cross-checks them
against the official file when it is available. `REQUEST_TYPES` maps a request's root element name
to its content model; a root name that is absent is an unknown method (E00004).
"""

from decimal import Decimal
from typing import Final

from authorize_net_simulator.content_model import Choice, ComplexType, ElementDecl, SimpleType


def _restricted(
    base: str,
    *,
    length: int | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    min_inclusive: Decimal | None = None,
    max_inclusive: Decimal | None = None,
    total_digits: int | None = None,
    fraction_digits: int | None = None,
) -> SimpleType:
    return SimpleType(
        base,
        length=length,
        min_length=min_length,
        max_length=max_length,
        min_inclusive=min_inclusive,
        max_inclusive=max_inclusive,
        total_digits=total_digits,
        fraction_digits=fraction_digits,
    )


def _named(
    name: str,
    base: str,
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    enumeration: tuple[str, ...] = (),
) -> SimpleType:
    return SimpleType(
        base, name=name, min_length=min_length, max_length=max_length, pattern=pattern, enumeration=enumeration
    )


def _element(name: str, type_: SimpleType | ComplexType, min_occurs: int, max_occurs: int | None) -> ElementDecl:
    return ElementDecl(name, type_, min_occurs, max_occurs)


def _choice(*alternatives: ElementDecl, min_occurs: int) -> Choice:
    return Choice(alternatives, min_occurs)


def _complex(name: str | None, *particles: ElementDecl | Choice) -> ComplexType:
    return ComplexType(name, particles)


_STRING: Final = SimpleType("string", builtin=True)
_DECIMAL: Final = SimpleType("decimal", builtin=True)
_BOOLEAN: Final = SimpleType("boolean", builtin=True)
_DATETIME: Final = SimpleType("dateTime", builtin=True)
_DATE: Final = SimpleType("date", builtin=True)
_LAX: Final = ComplexType("anyType", lax=True)


_ImpersonationAuthenticationType = _complex(
    "impersonationAuthenticationType",
    _element("partnerLoginId", _restricted("string", max_length=25), 1, 1),
    _element("partnerTransactionKey", _restricted("string", max_length=16), 1, 1),
)

_FingerPrintType = _complex(
    "fingerPrintType",
    _element("hashValue", _STRING, 1, 1),
    _element("sequence", _STRING, 0, 1),
    _element("timestamp", _STRING, 1, 1),
    _element("currencyCode", _STRING, 0, 1),
    _element("amount", _STRING, 0, 1),
)

_MerchantAuthenticationType = _complex(
    "merchantAuthenticationType",
    _element("name", _restricted("string", max_length=25), 0, 1),
    _choice(
        _element("transactionKey", _restricted("string", max_length=16), 1, 1),
        _element("sessionToken", _STRING, 0, 1),
        _element("password", _restricted("string", max_length=40), 1, 1),
        _element("impersonationAuthentication", _ImpersonationAuthenticationType, 0, 1),
        _element("fingerPrint", _FingerPrintType, 0, 1),
        _element("clientKey", _STRING, 0, 1),
        _element("accessToken", _STRING, 0, 1),
        min_occurs=1,
    ),
    _element("mobileDeviceId", _restricted("string", max_length=60), 0, 1),
)

_AuthenticateTestRequest = _complex(
    None,
    _element("merchantAuthentication", _MerchantAuthenticationType, 1, 1),
    _element("clientId", _restricted("string", max_length=30), 0, 1),
    _element("refId", _restricted("string", max_length=20), 0, 1),
)

_CreditCardType = _complex(
    "creditCardType",
    _element("cardNumber", _restricted("string", min_length=4, max_length=16), 1, 1),
    _element("expirationDate", _restricted("string", min_length=4, max_length=7), 1, 1),
    _element("cardCode", _named("cardCode", "string", min_length=3, max_length=4), 0, 1),
    _element("isPaymentToken", _BOOLEAN, 0, 1),
    _element("cryptogram", _STRING, 0, 1),
    _element("tokenRequestorName", _STRING, 0, 1),
    _element("tokenRequestorId", _STRING, 0, 1),
    _element("tokenRequestorEci", _STRING, 0, 1),
)

_BankAccountType = _complex(
    "bankAccountType",
    _element(
        "accountType",
        _named("bankAccountTypeEnum", "string", enumeration=("checking", "savings", "businessChecking")),
        0,
        1,
    ),
    _element("routingNumber", _restricted("string", max_length=9), 1, 1),
    _element("accountNumber", _restricted("string", max_length=17), 1, 1),
    _element("nameOnAccount", _restricted("string", max_length=22), 1, 1),
    _element(
        "echeckType", _named("echeckTypeEnum", "string", enumeration=("PPD", "WEB", "CCD", "TEL", "ARC", "BOC")), 0, 1
    ),
    _element("bankName", _restricted("string", max_length=50), 0, 1),
    _element("checkNumber", _restricted("string", max_length=15), 0, 1),
)

_CreditCardTrackType = _complex(
    "creditCardTrackType",
    _element("track1", _STRING, 1, 1),
    _element("track2", _STRING, 1, 1),
)

_EncryptedTrackDataType = _complex(
    "encryptedTrackDataType",
    _element("FormOfPayment", _LAX, 1, 1),
)

_PayPalType = _complex(
    "payPalType",
    _element("successUrl", _restricted("string", max_length=2048), 0, 1),
    _element("cancelUrl", _restricted("string", max_length=2048), 0, 1),
    _element("paypalLc", _restricted("string", max_length=2), 0, 1),
    _element("paypalHdrImg", _restricted("string", max_length=127), 0, 1),
    _element("paypalPayflowcolor", _restricted("string", max_length=6), 0, 1),
    _element("payerID", _restricted("string", max_length=255), 0, 1),
)

_OpaqueDataType = _complex(
    "opaqueDataType",
    _element("dataDescriptor", _STRING, 1, 1),
    _element("dataValue", _STRING, 1, 1),
    _element("dataKey", _STRING, 0, 1),
    _element("expirationTimeStamp", _DATETIME, 0, 1),
)

_PaymentEmvType = _complex(
    "paymentEmvType",
    _element("emvData", _LAX, 1, 1),
    _element("emvDescriptor", _LAX, 1, 1),
    _element("emvVersion", _LAX, 1, 1),
)

_PaymentType = _complex(
    "paymentType",
    _choice(
        _element("creditCard", _CreditCardType, 1, 1),
        _element("bankAccount", _BankAccountType, 1, 1),
        _element("trackData", _CreditCardTrackType, 1, 1),
        _element("encryptedTrackData", _EncryptedTrackDataType, 1, 1),
        _element("payPal", _PayPalType, 1, 1),
        _element("opaqueData", _OpaqueDataType, 1, 1),
        _element("emv", _PaymentEmvType, 1, 1),
        min_occurs=1,
    ),
    _element("dataSource", _STRING, 0, 1),
)

_PaymentProfile = _complex(
    "paymentProfile",
    _element("paymentProfileId", _named("numericString", "string", pattern="[0-9]+"), 1, 1),
    _element("cardCode", _named("cardCode", "string", min_length=3, max_length=4), 0, 1),
)

_CustomerProfilePaymentType = _complex(
    "customerProfilePaymentType",
    _element("createProfile", _BOOLEAN, 0, 1),
    _element("customerProfileId", _named("numericString", "string", pattern="[0-9]+"), 0, 1),
    _element("paymentProfile", _PaymentProfile, 0, 1),
    _element("shippingProfileId", _named("numericString", "string", pattern="[0-9]+"), 0, 1),
)

_SolutionType = _complex(
    "solutionType",
    _element("id", _STRING, 1, 1),
    _element("name", _STRING, 0, 1),
    _element("vendorName", _STRING, 0, 1),
)

_OrderType = _complex(
    "orderType",
    _element("invoiceNumber", _restricted("string", max_length=20), 0, 1),
    _element("description", _restricted("string", max_length=255), 0, 1),
    _element("discountAmount", _DECIMAL, 0, 1),
    _element("taxIsAfterDiscount", _BOOLEAN, 0, 1),
    _element("totalTaxTypeCode", _restricted("string", max_length=3), 0, 1),
    _element("purchaserVATRegistrationNumber", _restricted("string", max_length=21), 0, 1),
    _element("merchantVATRegistrationNumber", _restricted("string", max_length=21), 0, 1),
    _element("vatInvoiceReferenceNumber", _restricted("string", max_length=15), 0, 1),
    _element("purchaserCode", _restricted("string", max_length=17), 0, 1),
    _element("summaryCommodityCode", _restricted("string", max_length=4), 0, 1),
    _element("purchaseOrderDateUTC", _DATE, 0, 1),
    _element("supplierOrderReference", _restricted("string", max_length=25), 0, 1),
    _element("authorizedContactName", _restricted("string", max_length=36), 0, 1),
    _element("cardAcceptorRefNumber", _restricted("string", max_length=25), 0, 1),
    _element("amexDataTAA1", _restricted("string", max_length=40), 0, 1),
    _element("amexDataTAA2", _restricted("string", max_length=40), 0, 1),
    _element("amexDataTAA3", _restricted("string", max_length=40), 0, 1),
    _element("amexDataTAA4", _restricted("string", max_length=40), 0, 1),
)

_LineItemType = _complex(
    "lineItemType",
    _element("itemId", _restricted("string", min_length=1, max_length=31), 1, 1),
    _element("name", _restricted("string", min_length=1, max_length=31), 1, 1),
    _element("description", _restricted("string", max_length=255), 0, 1),
    _element("quantity", _restricted("decimal", min_inclusive=Decimal("0.00"), fraction_digits=4), 1, 1),
    _element("unitPrice", _restricted("decimal", min_inclusive=Decimal("0.00"), fraction_digits=4), 1, 1),
    _element("taxable", _BOOLEAN, 0, 1),
    _element("unitOfMeasure", _restricted("string", max_length=12), 0, 1),
    _element("typeOfSupply", _restricted("string", max_length=2), 0, 1),
    _element("taxRate", _restricted("decimal", total_digits=5, fraction_digits=5), 0, 1),
    _element("taxAmount", _DECIMAL, 0, 1),
    _element("nationalTax", _DECIMAL, 0, 1),
    _element("localTax", _DECIMAL, 0, 1),
    _element("vatRate", _restricted("decimal", total_digits=5, fraction_digits=5), 0, 1),
    _element("alternateTaxId", _restricted("string", max_length=20), 0, 1),
    _element("alternateTaxType", _restricted("string", max_length=4), 0, 1),
    _element("alternateTaxTypeApplied", _restricted("string", max_length=4), 0, 1),
    _element("alternateTaxRate", _restricted("decimal", total_digits=5, fraction_digits=5), 0, 1),
    _element("alternateTaxAmount", _DECIMAL, 0, 1),
    _element("totalAmount", _DECIMAL, 0, 1),
    _element("commodityCode", _restricted("string", max_length=15), 0, 1),
    _element("productCode", _restricted("string", max_length=30), 0, 1),
    _element("productSKU", _restricted("string", max_length=30), 0, 1),
    _element("discountRate", _restricted("decimal", total_digits=5, fraction_digits=5), 0, 1),
    _element("discountAmount", _DECIMAL, 0, 1),
    _element("taxIncludedInTotal", _BOOLEAN, 0, 1),
    _element("taxIsAfterDiscount", _BOOLEAN, 0, 1),
)

_ArrayOfLineItem = _complex(
    "ArrayOfLineItem",
    _element("lineItem", _LineItemType, 0, None),
)

_ExtendedAmountType = _complex(
    "extendedAmountType",
    _element("amount", _restricted("decimal", min_inclusive=Decimal("0.00"), fraction_digits=4), 1, 1),
    _element("name", _restricted("string", max_length=31), 0, 1),
    _element("description", _restricted("string", max_length=255), 0, 1),
)

_DriversLicenseType = _complex(
    "driversLicenseType",
    _element("number", _restricted("string", min_length=5, max_length=20), 1, 1),
    _element("state", _restricted("string", min_length=2, max_length=2), 1, 1),
    _element("dateOfBirth", _restricted("string", min_length=8, max_length=10), 1, 1),
)

_CustomerDataType = _complex(
    "customerDataType",
    _element("type", _named("customerTypeEnum", "string", enumeration=("individual", "business")), 0, 1),
    _element("id", _restricted("string", max_length=20), 0, 1),
    _element("email", _restricted("string", max_length=255), 0, 1),
    _element("driversLicense", _DriversLicenseType, 0, 1),
    _element("taxId", _restricted("string", min_length=8, max_length=9), 0, 1),
)

_CustomerAddressType = _complex(
    "customerAddressType",
    _element("firstName", _restricted("string", max_length=50), 0, 1),
    _element("lastName", _restricted("string", max_length=50), 0, 1),
    _element("company", _restricted("string", max_length=50), 0, 1),
    _element("address", _restricted("string", max_length=60), 0, 1),
    _element("city", _restricted("string", max_length=40), 0, 1),
    _element("state", _restricted("string", max_length=40), 0, 1),
    _element("zip", _restricted("string", max_length=20), 0, 1),
    _element("country", _restricted("string", max_length=60), 0, 1),
    _element("phoneNumber", _restricted("string", max_length=25), 0, 1),
    _element("faxNumber", _restricted("string", max_length=25), 0, 1),
    _element("email", _STRING, 0, 1),
)

_NameAndAddressType = _complex(
    "nameAndAddressType",
    _element("firstName", _restricted("string", max_length=50), 0, 1),
    _element("lastName", _restricted("string", max_length=50), 0, 1),
    _element("company", _restricted("string", max_length=50), 0, 1),
    _element("address", _restricted("string", max_length=60), 0, 1),
    _element("city", _restricted("string", max_length=40), 0, 1),
    _element("state", _restricted("string", max_length=40), 0, 1),
    _element("zip", _restricted("string", max_length=20), 0, 1),
    _element("country", _restricted("string", max_length=60), 0, 1),
)

_CcAuthenticationType = _complex(
    "ccAuthenticationType",
    _element("authenticationIndicator", _STRING, 1, 1),
    _element("cardholderAuthenticationValue", _STRING, 1, 1),
)

_TransRetailInfoType = _complex(
    "transRetailInfoType",
    _element("marketType", _STRING, 0, 1),
    _element("deviceType", _STRING, 0, 1),
    _element("customerSignature", _STRING, 0, 1),
    _element("terminalNumber", _STRING, 0, 1),
)

_SettingType = _complex(
    "settingType",
    _element("settingName", _STRING, 0, 1),
    _element("settingValue", _STRING, 0, 1),
)

_ArrayOfSetting = _complex(
    "ArrayOfSetting",
    _element("setting", _SettingType, 0, None),
)

_UserField = _complex(
    "userField",
    _element("name", _STRING, 0, 1),
    _element("value", _STRING, 0, 1),
)

_UserFields = _complex(
    None,
    _element("userField", _UserField, 0, 20),
)

_SubMerchantType = _complex(
    "subMerchantType",
    _element("identifier", _restricted("string", max_length=40), 1, 1),
    _element("doingBusinessAs", _restricted("string", max_length=50), 0, 1),
    _element("paymentServiceProviderName", _restricted("string", max_length=40), 0, 1),
    _element("paymentServiceFacilitator", _restricted("string", max_length=20), 0, 1),
    _element("streetAddress", _restricted("string", max_length=40), 0, 1),
    _element("phone", _restricted("string", max_length=20), 0, 1),
    _element("email", _restricted("string", max_length=40), 0, 1),
    _element("postalCode", _restricted("string", max_length=20), 0, 1),
    _element("city", _restricted("string", max_length=30), 0, 1),
    _element("regionCode", _restricted("string", max_length=10), 0, 1),
    _element("countryCode", _restricted("string", max_length=10), 0, 1),
)

_ProcessingOptions = _complex(
    "processingOptions",
    _element("isFirstRecurringPayment", _BOOLEAN, 0, 1),
    _element("isFirstSubsequentAuth", _BOOLEAN, 0, 1),
    _element("isSubsequentAuth", _BOOLEAN, 0, 1),
    _element("isStoredCredentials", _BOOLEAN, 0, 1),
)

_SubsequentAuthInformation = _complex(
    "subsequentAuthInformation",
    _element("originalNetworkTransId", _named("networkTransId", "string", max_length=255), 0, 1),
    _element("originalAuthAmount", _restricted("decimal", min_inclusive=Decimal("0.00"), fraction_digits=4), 0, 1),
    _element(
        "reason",
        _named(
            "merchantInitTransReasonEnum",
            "string",
            enumeration=("resubmission", "delayedCharge", "reauthorization", "noShow"),
        ),
        0,
        1,
    ),
)

_OtherTaxType = _complex(
    "otherTaxType",
    _element("nationalTaxAmount", _DECIMAL, 0, 1),
    _element("localTaxAmount", _DECIMAL, 0, 1),
    _element("alternateTaxAmount", _DECIMAL, 0, 1),
    _element("alternateTaxId", _restricted("string", max_length=15), 0, 1),
    _element("vatTaxRate", _restricted("decimal", total_digits=5, fraction_digits=5), 0, 1),
    _element("vatTaxAmount", _DECIMAL, 0, 1),
)

_AuthorizationIndicatorType = _complex(
    "authorizationIndicatorType",
    _element("authorizationIndicator", _named("authIndicatorEnum", "string", enumeration=("pre", "final")), 0, 1),
)

_TransactionRequestType = _complex(
    "transactionRequestType",
    _element("transactionType", _STRING, 1, 1),
    _element("amount", _DECIMAL, 0, 1),
    _element("currencyCode", _STRING, 0, 1),
    _element("payment", _PaymentType, 0, 1),
    _element("profile", _CustomerProfilePaymentType, 0, 1),
    _element("solution", _SolutionType, 0, 1),
    _element("callId", _STRING, 0, 1),
    _element("terminalNumber", _STRING, 0, 1),
    _element("authCode", _STRING, 0, 1),
    _element("refTransId", _STRING, 0, 1),
    _element("splitTenderId", _STRING, 0, 1),
    _element("order", _OrderType, 0, 1),
    _element("lineItems", _ArrayOfLineItem, 0, 1),
    _element("tax", _ExtendedAmountType, 0, 1),
    _element("duty", _ExtendedAmountType, 0, 1),
    _element("shipping", _ExtendedAmountType, 0, 1),
    _element("taxExempt", _restricted("boolean"), 0, 1),
    _element("poNumber", _STRING, 0, 1),
    _element("customer", _CustomerDataType, 0, 1),
    _element("billTo", _CustomerAddressType, 0, 1),
    _element("shipTo", _NameAndAddressType, 0, 1),
    _element("customerIP", _STRING, 0, 1),
    _element("cardholderAuthentication", _CcAuthenticationType, 0, 1),
    _element("retail", _TransRetailInfoType, 0, 1),
    _element("employeeId", _STRING, 0, 1),
    _element("transactionSettings", _ArrayOfSetting, 0, 1),
    _element("userFields", _UserFields, 0, 1),
    _element("surcharge", _ExtendedAmountType, 0, 1),
    _element("merchantDescriptor", _STRING, 0, 1),
    _element("subMerchant", _SubMerchantType, 0, 1),
    _element("tip", _ExtendedAmountType, 0, 1),
    _element("processingOptions", _ProcessingOptions, 0, 1),
    _element("subsequentAuthInformation", _SubsequentAuthInformation, 0, 1),
    _element("otherTax", _OtherTaxType, 0, 1),
    _element("shipFrom", _NameAndAddressType, 0, 1),
    _element("authorizationIndicatorType", _AuthorizationIndicatorType, 0, 1),
)

_CreateTransactionRequest = _complex(
    None,
    _element("merchantAuthentication", _MerchantAuthenticationType, 1, 1),
    _element("clientId", _restricted("string", max_length=30), 0, 1),
    _element("refId", _restricted("string", max_length=20), 0, 1),
    _element("transactionRequest", _TransactionRequestType, 1, 1),
)

_GetTransactionDetailsRequest = _complex(
    None,
    _element("merchantAuthentication", _MerchantAuthenticationType, 1, 1),
    _element("clientId", _restricted("string", max_length=30), 0, 1),
    _element("refId", _restricted("string", max_length=20), 0, 1),
    _element("transId", _named("numericString", "string", pattern="[0-9]+"), 1, 1),
)

_TransactionListSorting = _complex(
    "TransactionListSorting",
    _element("orderBy", _named("TransactionListOrderFieldEnum", "string", enumeration=("id", "submitTimeUTC")), 1, 1),
    _element("orderDescending", _BOOLEAN, 1, 1),
)

_Paging = _complex(
    "Paging",
    _element("limit", _restricted("decimal", min_inclusive=Decimal("1"), max_inclusive=Decimal("1000")), 1, 1),
    _element("offset", _restricted("decimal", min_inclusive=Decimal("1"), max_inclusive=Decimal("100000")), 1, 1),
)

_GetUnsettledTransactionListRequest = _complex(
    None,
    _element("merchantAuthentication", _MerchantAuthenticationType, 1, 1),
    _element("clientId", _restricted("string", max_length=30), 0, 1),
    _element("refId", _restricted("string", max_length=20), 0, 1),
    _element("status", _named("TransactionGroupStatusEnum", "string", enumeration=("any", "pendingApproval")), 0, 1),
    _element("sorting", _TransactionListSorting, 0, 1),
    _element("paging", _Paging, 0, 1),
)

_HeldTransactionRequestType = _complex(
    "heldTransactionRequestType",
    _element("action", _named("afdsTransactionEnum", "string", enumeration=("approve", "decline")), 1, 1),
    _element("refTransId", _STRING, 1, 1),
)

_UpdateHeldTransactionRequest = _complex(
    None,
    _element("merchantAuthentication", _MerchantAuthenticationType, 1, 1),
    _element("clientId", _restricted("string", max_length=30), 0, 1),
    _element("refId", _restricted("string", max_length=20), 0, 1),
    _element("heldTransactionRequest", _HeldTransactionRequestType, 1, 1),
)

_GetSettledBatchListRequest = _complex(
    None,
    _element("merchantAuthentication", _MerchantAuthenticationType, 1, 1),
    _element("clientId", _restricted("string", max_length=30), 0, 1),
    _element("refId", _restricted("string", max_length=20), 0, 1),
    _element("includeStatistics", _BOOLEAN, 0, 1),
    _element("firstSettlementDate", _DATETIME, 0, 1),
    _element("lastSettlementDate", _DATETIME, 0, 1),
)

_GetTransactionListRequest = _complex(
    None,
    _element("merchantAuthentication", _MerchantAuthenticationType, 1, 1),
    _element("clientId", _restricted("string", max_length=30), 0, 1),
    _element("refId", _restricted("string", max_length=20), 0, 1),
    _element("batchId", _named("numericString", "string", pattern="[0-9]+"), 0, 1),
    _element("sorting", _TransactionListSorting, 0, 1),
    _element("paging", _Paging, 0, 1),
)


REQUEST_TYPES: Final[dict[str, ComplexType]] = {
    "authenticateTestRequest": _AuthenticateTestRequest,
    "createTransactionRequest": _CreateTransactionRequest,
    "getTransactionDetailsRequest": _GetTransactionDetailsRequest,
    "getUnsettledTransactionListRequest": _GetUnsettledTransactionListRequest,
    "updateHeldTransactionRequest": _UpdateHeldTransactionRequest,
    "getSettledBatchListRequest": _GetSettledBatchListRequest,
    "getTransactionListRequest": _GetTransactionListRequest,
}
