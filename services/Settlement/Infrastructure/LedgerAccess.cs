using DataMarket.Contracts;
using DataMarket.Ledger.Model;

namespace DataMarket.SettlementService.Infrastructure;

/// <summary>The ledger the settlement service moves money through (only <see cref="ILedger"/>), however the process opened it.</summary>
public sealed class LedgerAccess(Func<CancellationToken, Task<ILedger>> open)
{
    public Task<ILedger> GetAsync(CancellationToken cancellationToken) => open(cancellationToken);

    /// <summary>Commits purchase lines as one linked batch; a resend of the same lines is accepted unchanged.</summary>
    public async Task CommitAsync(IReadOnlyList<TransferLine> lines, string actor, CancellationToken cancellationToken)
    {
        if (lines.Count == 0)
        {
            return;
        }

        var ledger = await GetAsync(cancellationToken);
        var result = await ledger.CommitAsync(lines.Select(ToRequest).ToList(), new LedgerCommandOptions { Actor = actor }, cancellationToken);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"the ledger refused the transfers: {result.Rejection} {result.Detail}");
        }
    }

    public static TransferRequest ToRequest(TransferLine line) => new()
    {
        Id = line.TransferId,
        Debit = AccountRef.Parse(line.DebitAccount),
        Credit = AccountRef.Parse(line.CreditAccount),
        Amount = line.Amount,
        Code = Enum.Parse<TransferCode>(line.Code.Replace("_", "", StringComparison.Ordinal), ignoreCase: true),
        Pending = line.Pending,
        Reference = line.Reference,
    };
}
