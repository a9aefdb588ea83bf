namespace DataMarket.Settlement.Split;

/// <summary>What a dispute for part of a sale takes from each of the sale's parts: the platform's fee and each seller's share.</summary>
public sealed record DisputedParts(long Amount, long Fee, IReadOnlyList<SellerShare> Shares);

/// <summary>
/// A dispute for part of a sale splits pro rata over what the sale paid: each part (the fee, each seller's share)
/// gives floor(amount x part / gross) cents, and the cents left over go one each to the largest remainders (ties:
/// the fee first, then sellers by id, ordinal). The quotients are exact (128-bit products), so no part is more than a
/// cent from amount x part / gross, none exceeds what the sale gave it, and the parts add up to the amount exactly.
/// </summary>
public static class DisputeSplit
{
    public static DisputedParts ProRata(long amount, SplitResult sale)
    {
        ArgumentNullException.ThrowIfNull(sale);
        if (amount <= 0 || amount > sale.Gross)
        {
            throw new SettlementInputException("amount", $"a dispute takes 1 to {sale.Gross} cents of this sale, got {amount}");
        }

        // Index 0 is the fee, then the shares in the sale's order.
        var parts = new long[sale.Shares.Count + 1];
        parts[0] = sale.Fee;
        for (var i = 0; i < sale.Shares.Count; i++)
        {
            parts[i + 1] = sale.Shares[i].Amount;
        }

        var taken = new long[parts.Length];
        var remainders = new Int128[parts.Length];
        var assigned = 0L;
        for (var i = 0; i < parts.Length; i++)
        {
            var product = (Int128)amount * parts[i];
            taken[i] = (long)(product / sale.Gross);
            remainders[i] = product % sale.Gross;
            assigned += taken[i];
        }

        // The parts sum to gross, so the floors lose less than one cent per part with a remainder.
        foreach (var i in Enumerable.Range(0, parts.Length)
                     .OrderByDescending(i => remainders[i])
                     .ThenBy(i => i == 0 ? 0 : 1)
                     .ThenBy(i => i == 0 ? string.Empty : sale.Shares[i - 1].SellerId, StringComparer.Ordinal)
                     .Take((int)(amount - assigned)))
        {
            taken[i]++;
        }

        return new DisputedParts(amount, taken[0], sale.Shares.Select((s, i) => s with { Amount = taken[i + 1] }).ToList());
    }
}
