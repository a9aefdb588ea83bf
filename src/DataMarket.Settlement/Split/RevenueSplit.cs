using System.Numerics;

namespace DataMarket.Settlement.Split;

/// <summary>The platform's commission: <c>fee = max(Minimum, ceil(Rate x gross))</c>, never more than gross.</summary>
public sealed record FeePolicy(decimal Rate, long Minimum = 0)
{
    public void Validate()
    {
        if (Rate is < 0m or > 1m)
        {
            throw new SettlementInputException("fee_rate", $"must be between 0 and 1, got {Rate}");
        }

        if (Minimum < 0)
        {
            throw new SettlementInputException("fee_min", $"must be at least 0 cents, got {Minimum}");
        }
    }

    public long FeeOn(long gross)
    {
        Validate();
        // Rate <= 1 and gross <= long.MaxValue, so the product fits a decimal and its ceiling fits a long.
        var byRate = (long)decimal.Ceiling(Rate * gross);
        return Math.Min(gross, Math.Max(Minimum, byRate));
    }
}

/// <summary>One seller's value in the split valuation (the tiered KNN-Shapley value of its rows in the bundle).</summary>
public sealed record ValuedSeller(string SellerId, double Value);

/// <summary>One seller's cents of a sale and the weight they came from (0 for a seller whose value was not positive).</summary>
public sealed record SellerShare(string SellerId, long Amount, double Weight);

/// <summary>
/// How a sale's gross splits: <see cref="Fee"/> to the platform and <see cref="Shares"/> (in the order the sellers
/// were given) summing exactly to <see cref="Net"/>. <see cref="EqualSplit"/> says no seller had a positive value,
/// so the net was split equally instead of by value.
/// </summary>
public sealed record SplitResult(long Gross, long Fee, long Net, IReadOnlyList<SellerShare> Shares, bool EqualSplit);

/// <summary>
/// Revenue split by value. Weights are max(value, 0) / sum of max(value, 0); each seller gets floor(net x weight)
/// cents and the cents left over go one each to the largest remainders, ties to the lower seller id (ordinal). The
/// quotas are computed exactly: every double is an integer times a power of two, so scaling all values to the
/// smallest exponent makes them integers and net x value / total an exact fraction. No rounding can push a share
/// past a cent from net x weight, and the parts always add up to net.
/// </summary>
public static class RevenueSplit
{
    public static SplitResult Allocate(long gross, FeePolicy fee, IReadOnlyList<ValuedSeller> sellers)
    {
        ArgumentNullException.ThrowIfNull(fee);
        ArgumentNullException.ThrowIfNull(sellers);
        if (gross < 0)
        {
            throw new SettlementInputException("gross", $"must be at least 0 cents, got {gross}");
        }

        if (sellers.Count == 0)
        {
            throw new SettlementInputException("values", "a sale needs at least one seller to pay");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var seller in sellers)
        {
            if (string.IsNullOrEmpty(seller.SellerId))
            {
                throw new SettlementInputException("values", "a seller id is empty");
            }

            if (!seen.Add(seller.SellerId))
            {
                throw new SettlementInputException($"values[{seller.SellerId}]", "the seller appears more than once");
            }

            if (!double.IsFinite(seller.Value))
            {
                throw new SettlementInputException($"values[{seller.SellerId}]", $"the value must be a finite number, got {seller.Value}");
            }
        }

        var feeAmount = fee.FeeOn(gross);
        var net = gross - feeAmount;
        var positive = sellers.Any(s => s.Value > 0);
        var amounts = positive ? ByValue(net, sellers) : Equally(net, sellers);
        // Reported weights only; scaled by the largest value first so a sum of huge values cannot overflow to infinity.
        var largest = sellers.Max(s => s.Value);
        var total = sellers.Sum(s => Math.Max(s.Value, 0) / largest);
        var shares = sellers
            .Select((s, i) => new SellerShare(s.SellerId, amounts[i], positive ? Math.Max(s.Value, 0) / largest / total : 1.0 / sellers.Count))
            .ToList();
        return new SplitResult(gross, feeAmount, net, shares, !positive);
    }

    private static long[] ByValue(long net, IReadOnlyList<ValuedSeller> sellers)
    {
        var mantissas = new BigInteger[sellers.Count];
        var exponents = new int[sellers.Count];
        var lowest = int.MaxValue;
        for (var i = 0; i < sellers.Count; i++)
        {
            if (sellers[i].Value > 0)
            {
                (mantissas[i], exponents[i]) = Decompose(sellers[i].Value);
                lowest = Math.Min(lowest, exponents[i]);
            }
        }

        var scaled = new BigInteger[sellers.Count];
        var total = BigInteger.Zero;
        for (var i = 0; i < sellers.Count; i++)
        {
            if (!mantissas[i].IsZero)
            {
                scaled[i] = mantissas[i] << (exponents[i] - lowest);
                total += scaled[i];
            }
        }

        var amounts = new long[sellers.Count];
        var remainders = new BigInteger[sellers.Count];
        var assigned = 0L;
        for (var i = 0; i < sellers.Count; i++)
        {
            var quotient = BigInteger.DivRem(net * scaled[i], total, out remainders[i]);
            amounts[i] = (long)quotient;
            assigned += amounts[i];
        }

        // Each floor loses less than a cent, so fewer cents than sellers with a positive value are left over.
        var left = net - assigned;
        foreach (var i in Enumerable.Range(0, sellers.Count)
                     .Where(i => !scaled[i].IsZero)
                     .OrderByDescending(i => remainders[i])
                     .ThenBy(i => sellers[i].SellerId, StringComparer.Ordinal)
                     .Take((int)left))
        {
            amounts[i]++;
        }

        return amounts;
    }

    private static long[] Equally(long net, IReadOnlyList<ValuedSeller> sellers)
    {
        var each = net / sellers.Count;
        var left = net % sellers.Count;
        var amounts = new long[sellers.Count];
        var byId = Enumerable.Range(0, sellers.Count).OrderBy(i => sellers[i].SellerId, StringComparer.Ordinal).ToArray();
        for (var rank = 0; rank < byId.Length; rank++)
        {
            amounts[byId[rank]] = each + (rank < left ? 1 : 0);
        }

        return amounts;
    }

    /// <summary>A positive finite double as mantissa x 2^exponent, both exact.</summary>
    private static (BigInteger Mantissa, int Exponent) Decompose(double value)
    {
        var bits = BitConverter.DoubleToInt64Bits(value);
        var exponentBits = (int)((bits >> 52) & 0x7FF);
        var fraction = bits & 0xFFFFFFFFFFFFFL;
        return exponentBits == 0
            ? (fraction, -1074)
            : (fraction | (1L << 52), exponentBits - 1075);
    }
}
