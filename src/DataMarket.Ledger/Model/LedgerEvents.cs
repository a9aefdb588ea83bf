using System.Text.Json;

namespace DataMarket.Ledger.Model;

/// <summary>The ledger's domain events, stored as JSON in the event store.</summary>
internal abstract record LedgerEvent
{
    public const string AccountOpenedType = "ledger.account_opened";
    public const string TransferCommittedType = "ledger.transfer_committed";
    public const string PendingPostedType = "ledger.pending_posted";
    public const string PendingVoidedType = "ledger.pending_voided";

    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    public abstract string TypeName { get; }

    public string ToJson() => JsonSerializer.Serialize(this, GetType(), s_json);

    public static LedgerEvent? FromJson(string type, string data) => type switch
    {
        AccountOpenedType => JsonSerializer.Deserialize<AccountOpened>(data, s_json),
        TransferCommittedType => JsonSerializer.Deserialize<TransferCommitted>(data, s_json),
        PendingPostedType => JsonSerializer.Deserialize<PendingTransferPosted>(data, s_json),
        PendingVoidedType => JsonSerializer.Deserialize<PendingTransferVoided>(data, s_json),
        _ => null,
    };

    public static string AccountStream(string accountId) => "account-" + accountId;

    public static string TransferStream(Guid transferId) => "transfer-" + transferId.ToString("D");
}

internal sealed record AccountOpened(string AccountId, string Kind, string Owner, string Currency, int Flags) : LedgerEvent
{
    public override string TypeName => AccountOpenedType;
}

internal sealed record TransferCommitted(
    Guid TransferId,
    string DebitAccountId,
    string CreditAccountId,
    long Amount,
    string Currency,
    string Code,
    bool Pending,
    Guid? BatchId,
    string? Reference) : LedgerEvent
{
    public override string TypeName => TransferCommittedType;
}

internal sealed record PendingTransferPosted(Guid TransferId) : LedgerEvent
{
    public override string TypeName => PendingPostedType;
}

internal sealed record PendingTransferVoided(Guid TransferId) : LedgerEvent
{
    public override string TypeName => PendingVoidedType;
}
