namespace DataMarket.Settlement;

/// <summary>
/// Settlement input that cannot be accepted as it stands; <see cref="Field"/> names the request field (or the
/// seller, listing or fraction) at fault so the caller can report it. Nothing has moved when this is thrown.
/// </summary>
public sealed class SettlementInputException(string field, string message) : ArgumentException($"{field}: {message}")
{
    public string Field { get; } = field;

    public string Reason { get; } = message;
}
