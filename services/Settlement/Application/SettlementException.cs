namespace DataMarket.SettlementService.Application;

public enum SettlementErrorKind
{
    Invalid,
    NotFound,
    Conflict,
    PaymentRequired,
    Gone,
    Unavailable,
}

/// <summary>A request the settlement service refuses; <see cref="Field"/> names the request field at fault. Nothing moved.</summary>
public sealed class SettlementException(SettlementErrorKind kind, string field, string message) : Exception(message)
{
    public SettlementErrorKind Kind { get; } = kind;

    public string Field { get; } = field;

    public static SettlementException NotFound(string field, string what) => new(SettlementErrorKind.NotFound, field, $"{what} was not found (or is not yours)");
}
