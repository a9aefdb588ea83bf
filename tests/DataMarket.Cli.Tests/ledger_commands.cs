using DataMarket.Ledger;
using DataMarket.Ledger.Model;

namespace DataMarket.Cli.Tests;

public sealed class ledger_commands
{
    [Fact]
    public async Task verify_balances_and_statement_read_an_embedded_ledger()
    {
        using var folder = new TempFolder();
        var path = Path.Combine(folder.Path, "ledger.db");
        DateTimeOffset allocatedAt;
        await using (var database = await LedgerDatabase.OpenSqliteAsync($"Data Source={path}"))
        {
            var charge = new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.PaymentClearing("USD"), Credit = AccountRef.Buyer("buyer-1", "USD"), Amount = 10_000, Code = TransferCode.Charge };
            var allocation = new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.Buyer("buyer-1", "USD"), Credit = AccountRef.SellerPayable("seller-7", "USD"), Amount = 8_000, Code = TransferCode.Allocation };
            var fee = new TransferRequest { Id = Guid.NewGuid(), Debit = AccountRef.Buyer("buyer-1", "USD"), Credit = AccountRef.PlatformFees("USD"), Amount = 2_000, Code = TransferCode.PlatformFee };
            Assert.Equal(LedgerStatus.Committed, (await database.Ledger.CommitAsync([charge, allocation, fee])).Status);
            allocatedAt = (await database.Ledger.GetTransferAsync(allocation.Id))!.CreatedAt;
        }

        var (verifyExit, verifyOutput, _) = await CliRunner.RunAsync("ledger", "verify", "--sqlite", path);
        Assert.Equal(0, verifyExit);
        Assert.Contains("USD", verifyOutput);

        var (balancesExit, balancesOutput, _) = await CliRunner.RunAsync("ledger", "balances", "--sqlite", path, "--account", "seller_payable:");
        Assert.Equal(0, balancesExit);
        Assert.Contains("seller_payable:seller-7:USD", balancesOutput);
        Assert.Contains("8,000", balancesOutput);
        Assert.DoesNotContain("platform_fees", balancesOutput);

        // The month the allocation was booked in, not the month the test reaches this line.
        var period = allocatedAt.UtcDateTime.ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);
        var (statementExit, statementOutput, _) = await CliRunner.RunAsync("ledger", "statement", "--sqlite", path, "--seller", "seller-7", "--period", period);
        Assert.Equal(0, statementExit);
        Assert.Contains("8,000", statementOutput);

        var (badExit, _, badError) = await CliRunner.RunAsync("ledger", "statement", "--sqlite", path, "--seller", "seller-7", "--period", "November");
        Assert.Equal(2, badExit);
        Assert.Contains("November", badError);
    }
}
