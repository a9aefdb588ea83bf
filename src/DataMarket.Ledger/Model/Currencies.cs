using System.Collections.Frozen;

namespace DataMarket.Ledger.Model;

/// <summary>
/// The ISO 4217 currencies the platform settles in, with their minor-unit digits (USD 2: amounts are
/// cents; JPY 0; BHD 3). Kept in code rather than asked of <c>RegionInfo</c>: the process runs with
/// invariant globalization, where culture data is absent, and a ledger must not accept a currency just
/// because a string looks like one ("US D", "XYZ").
/// </summary>
public static class Currencies
{
    private static readonly FrozenDictionary<string, int> s_minorUnitDigits = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["AED"] = 2, ["AUD"] = 2, ["BGN"] = 2, ["BHD"] = 3, ["BRL"] = 2, ["CAD"] = 2, ["CHF"] = 2, ["CLP"] = 0,
        ["CNY"] = 2, ["COP"] = 2, ["CZK"] = 2, ["DKK"] = 2, ["EGP"] = 2, ["EUR"] = 2, ["GBP"] = 2, ["HKD"] = 2,
        ["HUF"] = 2, ["IDR"] = 2, ["ILS"] = 2, ["INR"] = 2, ["ISK"] = 0, ["JOD"] = 3, ["JPY"] = 0, ["KES"] = 2,
        ["KRW"] = 0, ["KWD"] = 3, ["MXN"] = 2, ["MYR"] = 2, ["NGN"] = 2, ["NOK"] = 2, ["NZD"] = 2, ["OMR"] = 3,
        ["PHP"] = 2, ["PLN"] = 2, ["QAR"] = 2, ["RON"] = 2, ["SAR"] = 2, ["SEK"] = 2, ["SGD"] = 2, ["THB"] = 2,
        ["TND"] = 3, ["TRY"] = 2, ["TWD"] = 2, ["UAH"] = 2, ["USD"] = 2, ["VND"] = 0, ["ZAR"] = 2,
        // ISO 4217's code reserved for testing (it lists no minor unit; 2 here). Benchmarks book in it, so
        // they never move a real currency's platform accounts.
        [TestCurrency] = 2,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>ISO 4217's "codes specifically reserved for testing purposes".</summary>
    public const string TestCurrency = "XTS";

    /// <summary>Every supported code, in ordinal order.</summary>
    public static IReadOnlyList<string> Codes { get; } = s_minorUnitDigits.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>Whether <paramref name="code"/> (exactly, upper case) is a supported ISO 4217 code.</summary>
    public static bool IsSupported(string? code) => code is not null && s_minorUnitDigits.ContainsKey(code);

    /// <summary>How many digits the minor unit has: amounts are in units of 10^-digits of the currency.</summary>
    public static int MinorUnitDigits(string code) =>
        s_minorUnitDigits.TryGetValue(code, out var digits)
            ? digits
            : throw new ArgumentException($"Currency '{code}' is not a supported ISO 4217 code.", nameof(code));
}
