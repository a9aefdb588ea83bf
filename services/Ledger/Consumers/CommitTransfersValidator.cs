using System.Collections.Frozen;
using System.Text.Json;
using DataMarket.Contracts;
using DataMarket.Ledger.Model;
using FluentValidation;

namespace DataMarket.LedgerWorker.Consumers;

/// <summary>
/// The shape of a <see cref="CommitTransfers"/> command: errors name the transfer line and field
/// (for example <c>Transfers[1].DebitAccount</c>). Ledger rules (balances, id reuse) are the ledger's.
/// </summary>
public sealed class CommitTransfersValidator : AbstractValidator<CommitTransfers>
{
    /// <summary>At most this many transfers in one all-or-nothing command.</summary>
    public const int MaxTransfers = 1_000;

    private const string AccountIdShape = "kind:owner:CUR, owner 'platform' for platform accounts, e.g. buyer:alice:USD or platform_fees:platform:USD";

    /// <summary>Transfer codes by their wire names: charge, allocation, platform_fee, ...</summary>
    public static readonly FrozenDictionary<string, TransferCode> Codes = Enum.GetValues<TransferCode>()
        .ToFrozenDictionary(code => JsonNamingPolicy.SnakeCaseLower.ConvertName(code.ToString()), StringComparer.Ordinal);

    public CommitTransfersValidator()
    {
        RuleFor(c => c.CommandId).NotEmpty();
        RuleFor(c => c.Transfers).NotEmpty().WithMessage("name at least one transfer");
        RuleFor(c => c.Transfers)
            .Must(t => t is null || t.Count <= MaxTransfers)
            .WithMessage($"at most {MaxTransfers} transfers in one command");
        RuleForEach(c => c.Transfers).NotNull().WithMessage("a transfer line is missing").ChildRules(line =>
        {
            line.RuleFor(l => l.TransferId).NotEmpty();
            line.RuleFor(l => l.DebitAccount).Must(id => AccountIdProblem(id) is null).WithMessage(l => $"'{l.DebitAccount}' is not an account id: {AccountIdProblem(l.DebitAccount)} ({AccountIdShape})");
            line.RuleFor(l => l.CreditAccount).Must(id => AccountIdProblem(id) is null).WithMessage(l => $"'{l.CreditAccount}' is not an account id: {AccountIdProblem(l.CreditAccount)} ({AccountIdShape})");
            line.RuleFor(l => l.Amount).GreaterThan(0).WithMessage("must be a positive number of minor units (cents)");
            line.RuleFor(l => l.Code).Must(code => code is not null && Codes.ContainsKey(code))
                .WithMessage(l => $"unknown code '{l.Code}' (known: {string.Join(", ", Codes.Keys.Order(StringComparer.Ordinal))})");
        });
    }

    /// <summary>
    /// Why <paramref name="id"/> is not kind:owner:currency with a known kind, a clean non-blank owner
    /// (<c>platform</c> exactly for the platform's own accounts) and a supported ISO 4217 currency (any
    /// case; the ledger keeps it upper case); null when it is.
    /// </summary>
    private static string? AccountIdProblem(string? id)
    {
        if (string.IsNullOrEmpty(id))
        {
            return "it is empty";
        }

        AccountRef account;
        try
        {
            account = AccountRef.Parse(id);
        }
        catch (Exception exception) when (exception is FormatException or ArgumentException)
        {
            return exception.Message;
        }

        if (string.IsNullOrWhiteSpace(account.Owner) || account.Owner.Trim().Length != account.Owner.Length)
        {
            return "the owner is blank or has surrounding spaces";
        }

        return AccountRef.IsPlatformKind(account.Kind) == (account.Owner == AccountRef.PlatformOwner)
            ? null
            : $"the platform's accounts, and only they, are owned by '{AccountRef.PlatformOwner}'";
    }
}
