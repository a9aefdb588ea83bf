namespace DataMarket.Settlement;

/// <summary>Integer cents arithmetic that refuses to overflow instead of wrapping.</summary>
public static class Money
{
    /// <summary>Sum of amounts; an overflow of <see cref="long"/> is bad input named by <paramref name="field"/>, not a wrapped total.</summary>
    public static long Sum(IEnumerable<long> amounts, string field)
    {
        ArgumentNullException.ThrowIfNull(amounts);
        var total = 0L;
        foreach (var amount in amounts)
        {
            try
            {
                total = checked(total + amount);
            }
            catch (OverflowException)
            {
                throw new SettlementInputException(field, $"the sum exceeds {long.MaxValue} cents");
            }
        }

        return total;
    }

    /// <summary>Rounds half up (away from minus infinity at .5): 2.5 -> 3, -2.5 -> -2.</summary>
    public static decimal RoundHalfUp(decimal value) => decimal.Floor(value + 0.5m);

    /// <summary>Converts to cents, or refuses with the field named when the value lies outside what a long holds.</summary>
    public static long ToCents(decimal value, string field) =>
        value is >= long.MinValue and <= long.MaxValue
            ? (long)value
            : throw new SettlementInputException(field, $"{value} cents is beyond the largest amount the ledger holds ({long.MaxValue})");
}
