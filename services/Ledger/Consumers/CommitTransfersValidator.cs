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

    /// <summary>Transfer codes by their wire names: charge, allocation, platform_fee, ...</summary>
    public static readonly FrozenDictionary<string, TransferCode> Codes = Enum.GetValues<TransferCode>()
        .ToFrozenDictionary(code => JsonNamingPolicy.SnakeCaseLower.ConvertName(code.ToString()), StringComparer.Ordinal);

    public CommitTransfersValidator()
    {
        RuleFor(c => c.CommandId).NotEmpty();
        RuleFor(c => c.Transfers).NotEmpty().WithMessage("name at least one transfer");
        RuleFor(c => c.Transfers.Count).LessThanOrEqualTo(MaxTransfers).OverridePropertyName("Transfers");
        RuleForEach(c => c.Transfers).ChildRules(line =>
        {
            line.RuleFor(l => l.TransferId).NotEmpty();
            line.RuleFor(l => l.DebitAccount).Must(BeAnAccountId).WithMessage(l => $"'{l.DebitAccount}' is not an account id (kind:owner:currency)");
            line.RuleFor(l => l.CreditAccount).Must(BeAnAccountId).WithMessage(l => $"'{l.CreditAccount}' is not an account id (kind:owner:currency)");
            line.RuleFor(l => l.Amount).GreaterThan(0).WithMessage("must be a positive number of minor units (cents)");
            line.RuleFor(l => l.Code).Must(code => code is not null && Codes.ContainsKey(code))
                .WithMessage(l => $"unknown code '{l.Code}' (known: {string.Join(", ", Codes.Keys.Order(StringComparer.Ordinal))})");
        });
    }

    private static bool BeAnAccountId(string? id)
    {
        if (string.IsNullOrEmpty(id))
        {
            return false;
        }

        try
        {
            AccountRef.Parse(id);
            return true;
        }
        catch (Exception exception) when (exception is FormatException or ArgumentException)
        {
            return false;
        }
    }
}
