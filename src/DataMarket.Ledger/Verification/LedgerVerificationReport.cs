using System.Globalization;
using System.Text;

namespace DataMarket.Ledger.Verification;

public sealed record LedgerCheck(string Name, bool Passed, string Detail);

/// <summary>Sums across accounts, only ever reported: 128-bit, so many accounts near 64 bits still add up exactly.</summary>
public sealed record CurrencyTotals(string Currency, Int128 DebitsPosted, Int128 CreditsPosted, Int128 DebitsPending, Int128 CreditsPending);

/// <summary>The outcome of <c>datamarket ledger verify</c>: every invariant, checked over one consistent snapshot.</summary>
public sealed record LedgerVerificationReport(
    IReadOnlyList<LedgerCheck> Checks,
    long Events,
    long Streams,
    long Accounts,
    long Transfers,
    long PendingTransfers,
    long UndispatchedOutboxMessages,
    IReadOnlyList<CurrencyTotals> Currencies)
{
    public bool Passed => Checks.All(c => c.Passed);

    public string ToText()
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"ledger verify: {(Passed ? "OK" : "FAILED")}");
        text.AppendLine(CultureInfo.InvariantCulture, $"  events {Events}, streams {Streams}, accounts {Accounts}, transfers {Transfers} ({PendingTransfers} pending), undispatched outbox {UndispatchedOutboxMessages}");
        foreach (var currency in Currencies)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  {currency.Currency}: posted debits {currency.DebitsPosted} = credits {currency.CreditsPosted}; pending debits {currency.DebitsPending} = credits {currency.CreditsPending}");
        }

        foreach (var check in Checks)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  [{(check.Passed ? "ok" : "FAIL")}] {check.Name}: {check.Detail}");
        }

        return text.ToString();
    }
}
