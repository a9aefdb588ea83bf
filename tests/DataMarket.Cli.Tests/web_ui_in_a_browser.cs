using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.CommandLine;
using DataMarket.Cli.Commands;
using DataMarket.Cli.Demo;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace DataMarket.Cli.Tests;

/// <summary>
/// The gateway's web UI in Debian's Chromium (headless, launched by path: no browser download), against the market
/// <c>serve</c> runs. Screenshots of the key pages go to <c>browser-screenshots/</c> in the test output folder.
/// </summary>
public sealed class web_ui_in_a_browser(EmbeddedServer server, BrowserFixture browser) : IClassFixture<EmbeddedServer>, IClassFixture<BrowserFixture>
{
    private static readonly DemoMarket s_market = new(rowsPerSeller: 120, testRows: 60);
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> s_totpSecrets = new();

    /// <summary>
    /// The market end to end in the browser: a seller signs up, uploads a dataset and prices it; a buyer uploads a task,
    /// requests a valuation, sees the chart and the likeliest mislabelled rows, gets a quote, buys and downloads; the
    /// seller then sees what the valuation found its data worth and what it earned. Every wait is on a condition.
    /// </summary>
    [Fact]
    public async Task a_seller_lists_and_prices_data_and_a_buyer_values_quotes_buys_and_downloads_it_and_the_seller_sees_the_earnings()
    {
        var sellerName = $"seller-{Guid.NewGuid():N}"[..20];
        var sellerPassword = $"pw-{Guid.NewGuid():N}";
        var sellerPage = await (await browser.NewContextAsync(server.Address)).NewPageAsync();
        await sellerPage.GotoAsync("/signup");
        await sellerPage.GetByLabel("I am a").SelectOptionAsync("seller");
        await sellerPage.GetByLabel("Account name").FillAsync(sellerName);
        await sellerPage.GetByLabel("Password").FillAsync(sellerPassword);
        await sellerPage.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await sellerPage.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/seller");
        var sellerId = await server.AccountIdAsync(sellerName);

        await sellerPage.GetByLabel("Name").FillAsync("Northwind <b>clean</b> rows");
        await sellerPage.GetByLabel("Description").FillAsync("sensor readings");
        await sellerPage.Locator("#Upload").SetInputFilesAsync(CsvFile("northwind.csv", s_market.Sellers[0].Csv));
        await sellerPage.GetByRole(AriaRole.Button, new() { Name = "Upload and list" }).ClickAsync();

        await Expect(sellerPage.GetByRole(AriaRole.Status)).ToContainTextAsync("is listed: 120 rows, 6 features");
        var row = sellerPage.GetByTestId("listings").Locator("tbody tr");
        await Expect(row).ToHaveCountAsync(1);
        // The name comes back as text: the markup in it is shown, not rendered.
        await Expect(row.Locator("td").Nth(0)).ToHaveTextAsync("Northwind <b>clean</b> rows");
        await Expect(row.Locator("td").Nth(1)).ToHaveTextAsync("Listed");
        await Expect(row.Locator("td").Nth(6)).ToContainTextAsync("not priced");
        await Expect(sellerPage.GetByLabel("Name")).ToHaveValueAsync(string.Empty);

        // Prices: a reserve above the list price is refused with the service's reason, then valid prices are kept.
        await row.GetByRole(AriaRole.Link, new() { Name = "set prices" }).ClickAsync();
        await sellerPage.Locator("#Reserve").FillAsync("60");
        await sellerPage.Locator("#ListPrice").FillAsync("50");
        await sellerPage.GetByRole(AriaRole.Button, new() { Name = "Save prices" }).ClickAsync();
        await Expect(sellerPage.GetByRole(AriaRole.Alert)).ToContainTextAsync("is above the list price");
        await sellerPage.Locator("#Reserve").FillAsync("3");
        await sellerPage.Locator("#ListPrice").FillAsync("50.00");
        await sellerPage.GetByRole(AriaRole.Button, new() { Name = "Save prices" }).ClickAsync();
        await sellerPage.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/seller");
        await Expect(sellerPage.GetByTestId("listing-prices")).ToHaveTextAsync("reserve 3.00, list 50.00");
        await browser.ScreenshotAsync(sellerPage, "seller-datasets");

        var buyer = await server.WebLoginAsync("buyer");
        var buyerPage = await SignedInPageAsync(buyer);
        Assert.EndsWith("/buyer", buyerPage.Url, StringComparison.Ordinal);
        await buyerPage.Locator("#TaskName").FillAsync("my churn task");
        await buyerPage.Locator("#TaskFile").SetInputFilesAsync(CsvFile("task.csv", s_market.TestTaskCsv));
        await buyerPage.GetByRole(AriaRole.Button, new() { Name = "Upload task" }).ClickAsync();

        await Expect(buyerPage.GetByRole(AriaRole.Status)).ToContainTextAsync("'my churn task' posted: 60 rows");
        // Only the seller's listing from this test: others' listings in the shared server are unticked.
        var listingBoxes = buyerPage.Locator("input[name=ListingIds]");
        for (var i = 0; i < await listingBoxes.CountAsync(); i++)
        {
            var box = listingBoxes.Nth(i);
            var label = await box.Locator("xpath=..").InnerTextAsync();
            await box.SetCheckedAsync(label.Contains("Northwind", StringComparison.Ordinal));
        }

        await buyerPage.Locator("#Method").SelectOptionAsync("tiered-knn-shapley");
        await buyerPage.GetByRole(AriaRole.Button, new() { Name = "Request valuation" }).ClickAsync();
        Assert.Matches("/buyer/valuations/[0-9a-f-]{36}$", buyerPage.Url);

        // The page reloads itself while the valuation runs; the status reaches Completed without a click.
        await Expect(buyerPage.GetByTestId("valuation-status")).ToHaveTextAsync("Completed", new() { Timeout = 180_000 });
        await Expect(buyerPage.GetByTestId("seller-chart").Locator("rect")).ToHaveCountAsync(1);
        await Expect(buyerPage.GetByTestId("point-histogram").Locator("rect")).Not.ToHaveCountAsync(0);

        // The chart and table show what the API says, for this seller, with its 95% interval.
        var id = buyerPage.Url[(buyerPage.Url.LastIndexOf('/') + 1)..];
        var api = await buyer.Account.Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{id}");
        var sellerValue = api.GetProperty("sellers").EnumerateArray().Single();
        Assert.Equal(sellerId, sellerValue.GetProperty("sellerId").GetString());
        var value = sellerValue.GetProperty("value");
        var cells = buyerPage.GetByTestId("seller-values").Locator("tbody tr td");
        await Expect(cells.Nth(0)).ToHaveTextAsync("Northwind <b>clean</b> rows (120 points)");
        await Expect(cells.Nth(1)).ToHaveTextAsync(G4(value.GetProperty("value").GetDouble()));
        await Expect(cells.Nth(2)).ToHaveTextAsync($"{G4(value.GetProperty("lower95").GetDouble())} to {G4(value.GetProperty("upper95").GetDouble())}");

        // The likeliest mislabelled rows are the ten lowest per-point values (ties by position), read independently from the API.
        var points = (await buyer.Account.Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{id}/points?limit=1000")).GetProperty("items").EnumerateArray()
            .Select(p => (Row: p.GetProperty("row").GetInt32(), Ordinal: p.GetProperty("ordinal").GetInt32(), Value: p.GetProperty("value").GetProperty("value").GetDouble()))
            .OrderBy(p => p.Value).ThenBy(p => p.Ordinal).Take(10).ToList();
        var lowest = buyerPage.GetByTestId("lowest-rows").Locator("tbody tr");
        await Expect(lowest).ToHaveCountAsync(10);
        for (var i = 0; i < points.Count; i++)
        {
            await Expect(lowest.Nth(i).Locator("td").Nth(1)).ToHaveTextAsync(points[i].Row.ToString(CultureInfo.InvariantCulture));
            await Expect(lowest.Nth(i).Locator("td").Nth(2)).ToHaveTextAsync(G4(points[i].Value));
        }

        await browser.ScreenshotAsync(buyerPage, "buyer-valuation-results");

        // A quote for the bundle: the price and the seller's share, as the settlement service computed them.
        await buyerPage.GetByRole(AriaRole.Button, new() { Name = "Request a quote" }).ClickAsync();
        await buyerPage.WaitForURLAsync(url => new Uri(url).AbsolutePath.StartsWith("/buyer/quotes/", StringComparison.Ordinal));
        var quoteId = Guid.Parse(buyerPage.Url[(buyerPage.Url.LastIndexOf('/') + 1)..]);
        var quote = await buyer.Account.Http.GetFromJsonAsync<JsonElement>($"/api/quotes/{quoteId}");
        var price = quote.GetProperty("price").GetInt64();
        Assert.InRange(price, 300, 5_000);
        await Expect(buyerPage.GetByTestId("quote-price")).ToHaveTextAsync(Cents(price));
        var share = quote.GetProperty("shares").EnumerateArray().Single().GetProperty("amount").GetInt64();
        await Expect(buyerPage.GetByTestId("split").Locator("tbody tr td").Nth(3)).ToHaveTextAsync(Cents(share));
        await Expect(buyerPage.GetByTestId("split-chart").Locator("rect")).ToHaveCountAsync(1);
        await browser.ScreenshotAsync(buyerPage, "buyer-quote");

        await buyerPage.GetByRole(AriaRole.Button, new() { Name = $"Buy for {Cents(price)}" }).ClickAsync();
        await buyerPage.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/buyer/purchases");
        await Expect(buyerPage.GetByTestId("purchases").Locator("tbody tr")).ToHaveCountAsync(1);
        // The form's purchase carried an Idempotency-Key: the same key again answers the same purchase, nothing is bought twice.
        var purchases = await buyer.Account.Http.GetFromJsonAsync<JsonElement>("/api/purchases");
        var purchaseId = purchases.EnumerateArray().Single().GetProperty("id").GetGuid();
        var again = new HttpRequestMessage(HttpMethod.Post, "/api/purchases") { Content = JsonContent.Create(new { quoteId }) };
        again.Headers.Add("Idempotency-Key", $"web-purchase-{quoteId:N}");
        var replayed = await buyer.Account.Http.SendAsync(again);
        Assert.Equal(HttpStatusCode.Created, replayed.StatusCode);
        Assert.Equal(purchaseId, (await replayed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid());

        var download = await buyerPage.RunAndWaitForDownloadAsync(() => buyerPage.GetByRole(AriaRole.Link, new() { Name = "Download Northwind <b>clean</b> rows" }).ClickAsync());
        var file = Path.Combine(Path.GetTempPath(), $"bought-{Guid.NewGuid():N}.csv");
        await download.SaveAsAsync(file);
        Assert.Equal(s_market.Sellers[0].Csv, await File.ReadAllTextAsync(file));
        File.Delete(file);
        await browser.ScreenshotAsync(buyerPage, "buyer-purchases");

        // The seller sees the valuation's value (method and amount, never the buyer) and the share it earned, held for the refund window.
        await sellerPage.GotoAsync("/seller/earnings");
        var received = sellerPage.GetByTestId("received-values").Locator("tbody tr");
        await Expect(received).ToHaveCountAsync(1);
        await Expect(received.Locator("td").Nth(1)).ToHaveTextAsync("tiered-knn-shapley (K=5)");
        await Expect(received.Locator("td").Nth(2)).ToHaveTextAsync("Northwind <b>clean</b> rows");
        await Expect(received.Locator("td").Nth(4)).ToHaveTextAsync(G4(value.GetProperty("value").GetDouble()));
        await Expect(sellerPage.GetByTestId("received-chart").Locator("rect")).ToHaveCountAsync(1);
        var thisMonth = sellerPage.GetByTestId("statements").Locator("tbody tr").First;
        await Expect(thisMonth.Locator("td").Nth(0)).ToHaveTextAsync(DateTime.UtcNow.ToString("yyyy-MM", CultureInfo.InvariantCulture));
        await Expect(thisMonth.Locator("td").Nth(2)).ToHaveTextAsync(Cents(share));
        await Expect(thisMonth.Locator("td").Nth(3)).ToHaveTextAsync(Cents(share));
        Assert.DoesNotContain(buyer.Account.Id, await sellerPage.ContentAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain(buyer.Name, await sellerPage.ContentAsync(), StringComparison.Ordinal);
        await browser.ScreenshotAsync(sellerPage, "seller-values-and-earnings");

        // Money moved from the pages is audited like the same calls made with an API key.
        var audit = (await server.ReadAuditAsync()).Select(e => (e.ActorId, e.Action, e.Target)).ToList();
        var listing = (await buyer.Account.Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{id}")).GetProperty("listingIds")[0].GetGuid();
        Assert.Contains((sellerId, "set price terms", $"/api/terms/{listing} answered 400"), audit);
        Assert.Contains((sellerId, "set price terms", $"/api/terms/{listing} answered 200"), audit);
        Assert.Contains((buyer.Account.Id, "purchase", "/api/purchases answered 201"), audit);
    }

    [Fact]
    public async Task a_buyer_cannot_open_another_buyers_valuation_and_a_seller_cannot_open_buyer_pages()
    {
        var owner = await server.WebLoginAsync("buyer");
        var valuationId = await ValuationThroughTheApiAsync(owner.Account.Http);

        var own = await SignedInPageAsync(owner);
        var ownResponse = await own.GotoAsync($"/buyer/valuations/{valuationId}");
        Assert.Equal(200, ownResponse!.Status);

        var other = await SignedInPageAsync(await server.WebLoginAsync("buyer"));
        var response = await other.GotoAsync($"/buyer/valuations/{valuationId}");
        Assert.Equal(404, response!.Status);
        Assert.DoesNotContain(valuationId.ToString(), await other.ContentAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain(owner.Account.Id, await other.ContentAsync(), StringComparison.Ordinal);

        var seller = await SignedInPageAsync(await server.WebLoginAsync("seller"));
        var denied = await seller.GotoAsync($"/buyer/valuations/{valuationId}");
        Assert.Equal(403, denied!.Status);
        Assert.EndsWith("/denied", new Uri(seller.Url).AbsolutePath, StringComparison.Ordinal);
        var operatorPage = await seller.GotoAsync("/operator");
        Assert.Equal(403, operatorPage!.Status);
    }

    [Fact]
    public async Task a_wrong_password_is_refused_and_an_anonymous_visitor_is_sent_to_sign_in()
    {
        var login = await server.WebLoginAsync("buyer");
        var context = await browser.NewContextAsync(server.Address);
        var page = await context.NewPageAsync();

        var anonymous = await page.GotoAsync("/buyer");
        Assert.Equal("/signin", new Uri(page.Url).AbsolutePath, StringComparer.OrdinalIgnoreCase);
        Assert.Equal(200, anonymous!.Status);

        await page.GetByLabel("Account name").FillAsync(login.Name);
        await page.GetByLabel("Password").FillAsync(login.Password + "x");
        var refused = await PostByClickingAsync(page, "Sign in");
        Assert.Equal(401, refused.Status);
        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("The account name or the password is wrong.");
        Assert.DoesNotContain(await context.CookiesAsync(), c => c.Name == "datamarket.session");

        // An unknown name gets the same answer.
        await page.GetByLabel("Account name").FillAsync("nobody-by-this-name");
        await page.GetByLabel("Password").FillAsync(login.Password);
        var unknown = await PostByClickingAsync(page, "Sign in");
        Assert.Equal(401, unknown.Status);
        await browser.ScreenshotAsync(page, "sign-in-refused");
    }

    [Fact]
    public async Task a_post_without_the_antiforgery_token_is_refused_and_signing_out_ends_the_session()
    {
        var login = await server.WebLoginAsync("buyer");
        var page = await SignedInPageAsync(login);
        var session = (await page.Context.CookiesAsync()).Single(c => c.Name == "datamarket.session");
        Assert.True(session.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, session.SameSite);
        var antiforgery = (await page.Context.CookiesAsync()).Single(c => c.Name == "datamarket.antiforgery");
        Assert.True(antiforgery.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, antiforgery.SameSite);

        // The session cookie goes along (the browser context's cookies), the form's token does not.
        var task = await TaskThroughTheApiAsync(login.Account.Http);
        var form = page.Context.APIRequest.CreateFormData();
        form.Set("TaskId", task.ToString());
        form.Set("Method", "knn-shapley");
        form.Set("K", "1");
        var forged = await page.Context.APIRequest.PostAsync(server.Address + "buyer/request-valuation", new() { Form = form, MaxRedirects = 0 });
        Assert.Equal(400, forged.Status);
        var valuations = await login.Account.Http.GetFromJsonAsync<JsonElement>("/api/valuations");
        Assert.Equal(0, valuations.GetArrayLength());

        // Nor does a cookie alone open the API: the API takes keys only.
        var api = await page.Context.APIRequest.GetAsync(server.Address + "api/valuations");
        Assert.Equal(401, api.Status);

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/");
        await page.GotoAsync("/buyer");
        Assert.Equal("/signin", new Uri(page.Url).AbsolutePath, StringComparer.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task an_operator_sees_the_accounts_and_the_audit_log()
    {
        var seller = await server.WebLoginAsync("seller");
        var page = await SignedInPageAsync(await server.WebLoginAsync("operator"));
        Assert.EndsWith("/operator", page.Url, StringComparison.Ordinal);
        await Expect(page.GetByTestId("accounts")).ToContainTextAsync(seller.Name);
        await Expect(page.GetByTestId("audit")).ToContainTextAsync("session.sign-in");
        await Expect(page.GetByTestId("audit")).ToContainTextAsync($"{seller.Account.Id} (seller)");
        await browser.ScreenshotAsync(page, "operator-audit-log");

        // Settlements: the ledger's own check, a run asked for from the page (it reloads itself until the run completes).
        await page.GetByRole(AriaRole.Link, new() { Name = "Settlements and ledger" }).ClickAsync();
        await Expect(page.GetByTestId("ledger-verify")).ToHaveTextAsync("OK");
        await Expect(page.GetByTestId("ledger-checks").Locator("tbody tr")).Not.ToHaveCountAsync(0);
        await page.Locator("#Period").FillAsync("2020-13");
        await page.GetByRole(AriaRole.Button, new() { Name = "Run settlement" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("is not a month written yyyy-MM");
        await page.Locator("#Period").FillAsync("2020-01");
        await page.GetByRole(AriaRole.Button, new() { Name = "Run settlement" }).ClickAsync();
        await Expect(page.GetByTestId("run-2020-01").GetByTestId("run-status")).ToHaveTextAsync("completed", new() { Timeout = 120_000 });
        await Expect(page.GetByTestId("run-2020-01")).ToContainTextAsync("reconciliation clean");
        await Expect(page.GetByTestId("no-failed-payouts")).ToBeVisibleAsync();
        await browser.ScreenshotAsync(page, "operator-settlements");
        Assert.Contains(await server.ReadAuditAsync(), e => e.Action == "run a settlement" && e.Target == "/api/settlements/2020-01/run answered 202");
    }

    [Fact]
    public async Task an_operator_enrols_an_authenticator_and_needs_a_fresh_code_at_every_sign_in()
    {
        var login = await server.WebLoginAsync("operator");
        var context = await browser.NewContextAsync(server.Address);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/signin");
        await page.GetByLabel("Account name").FillAsync(login.Name);
        await page.GetByLabel("Password").FillAsync(login.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        Assert.Equal("/signin/second-factor", new Uri(page.Url).AbsolutePath);
        var secret = await page.GetByTestId("totp-key").InnerTextAsync();
        await browser.ScreenshotAsync(page, "operator-second-factor-enrolment");

        // The password alone opens nothing: the operator's pages still send the visitor to sign in.
        var stepOnly = await context.NewPageAsync();
        await stepOnly.GotoAsync("/operator");
        Assert.Equal("/signin", new Uri(stepOnly.Url).AbsolutePath, StringComparer.OrdinalIgnoreCase);

        // A code outside the accepted window (one 30-second step either way) is refused.
        var accepted = new[] { -30, 0, 30 }.Select(s => TotpCode(secret, TimeSpan.FromSeconds(s))).ToHashSet();
        var wrong = Enumerable.Range(0, 10).Select(i => $"{i}{i}{i}{i}{i}{i}").First(code => !accepted.Contains(code));
        await page.GetByLabel("Code").FillAsync(wrong);
        var refused = await PostByClickingAsync(page, "Continue");
        Assert.Equal(401, refused.Status);
        Assert.Equal(secret, await page.GetByTestId("totp-key").InnerTextAsync());

        var code = TotpCode(secret, TimeSpan.Zero);
        await page.GetByLabel("Code").FillAsync(code);
        await page.GetByRole(AriaRole.Button, new() { Name = "Continue" }).ClickAsync();
        Assert.Equal("/operator", new Uri(page.Url).AbsolutePath, StringComparer.OrdinalIgnoreCase);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();

        // Enrolled: the key is not shown again, and a used code does not work twice.
        await page.GotoAsync("/signin");
        await page.GetByLabel("Account name").FillAsync(login.Name);
        await page.GetByLabel("Password").FillAsync(login.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.GetByTestId("totp-key")).ToHaveCountAsync(0);
        await page.GetByLabel("Code").FillAsync(code);
        var replayed = await PostByClickingAsync(page, "Continue");
        Assert.Equal(401, replayed.Status);
        await page.GetByLabel("Code").FillAsync(TotpCode(secret, TimeSpan.FromSeconds(30)));
        await page.GetByRole(AriaRole.Button, new() { Name = "Continue" }).ClickAsync();
        Assert.Equal("/operator", new Uri(page.Url).AbsolutePath, StringComparer.OrdinalIgnoreCase);
        await Expect(page.GetByTestId("audit")).ToContainTextAsync("second-factor.enrol");
        await Expect(page.GetByTestId("audit")).ToContainTextAsync("second-factor.refused");
    }

    [Fact]
    public async Task an_operators_reset_link_sets_a_new_password_once()
    {
        var seller = await server.WebLoginAsync("seller");
        var operatorPage = await SignedInPageAsync(await server.WebLoginAsync("operator"));
        await operatorPage.Locator("#ResetName").FillAsync(seller.Name);
        await operatorPage.GetByRole(AriaRole.Button, new() { Name = "Issue reset link" }).ClickAsync();
        var link = await operatorPage.GetByTestId("reset-link").InnerTextAsync();
        Assert.StartsWith(server.Address + "reset?token=", link, StringComparison.Ordinal);
        await Expect(operatorPage.GetByTestId("audit")).ToContainTextAsync("password.reset-link");

        var context = await browser.NewContextAsync(server.Address);
        var page = await context.NewPageAsync();
        await page.GotoAsync(link);
        var newPassword = $"new-{Guid.NewGuid():N}";
        await page.GetByLabel("New password").FillAsync(newPassword);
        await page.GetByRole(AriaRole.Button, new() { Name = "Set password" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("Your new password is set: sign in with it.");

        var signedIn = await SignedInPageAsync(seller with { Password = newPassword });
        Assert.Equal("/seller", new Uri(signedIn.Url).AbsolutePath, StringComparer.OrdinalIgnoreCase);

        // The old password no longer works, and the link works only once.
        await page.GetByLabel("Account name").FillAsync(seller.Name);
        await page.GetByLabel("Password").FillAsync(seller.Password);
        var refused = await PostByClickingAsync(page, "Sign in");
        Assert.Equal(401, refused.Status);
        var again = await page.GotoAsync(link);
        Assert.Equal(404, again!.Status);
        await Expect(page.GetByLabel("New password")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task a_buyer_downloads_their_data_then_deletes_the_account_and_its_sessions_and_keys_stop_working()
    {
        var login = await server.WebLoginAsync("buyer");
        var valuation = await ValuationThroughTheApiAsync(login.Account.Http);
        var page = await SignedInPageAsync(login);
        var otherSession = await SignedInPageAsync(login);
        await page.GotoAsync("/account");

        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Button, new() { Name = "Download my data" }).ClickAsync());
        var file = Path.Combine(Path.GetTempPath(), $"export-{Guid.NewGuid():N}.json");
        await download.SaveAsAsync(file);
        var export = JsonDocument.Parse(await File.ReadAllTextAsync(file)).RootElement;
        var text = await File.ReadAllTextAsync(file);
        File.Delete(file);
        Assert.Equal(login.Name, export.GetProperty("gateway").GetProperty("account").GetProperty("name").GetString());
        Assert.Equal(valuation, export.GetProperty("catalog").GetProperty("valuations")[0].GetProperty("id").GetGuid());
        Assert.Equal(1, export.GetProperty("catalog").GetProperty("tasks").GetArrayLength());
        Assert.Contains(export.GetProperty("gateway").GetProperty("audit").EnumerateArray(), e => e.GetProperty("action").GetString() == "session.sign-in");
        // Key names and dates only: never the key itself, nor the password's hash.
        Assert.DoesNotContain(login.Account.Key, text, StringComparison.Ordinal);
        Assert.DoesNotContain(login.Account.Key.Split('_', 3)[2], text, StringComparison.Ordinal);

        await page.Locator("#DeletePassword").FillAsync(login.Password + "x");
        var refused = await PostByClickingAsync(page, "Delete my account");
        Assert.Equal(401, refused.Status);
        Assert.Equal(HttpStatusCode.OK, (await login.Account.Http.GetAsync("/api/me")).StatusCode);

        var before = await server.CatalogHoldingsAsync(login.Account.Id);
        Assert.Equal((1, 1), (before.Tasks, before.Valuations));
        await page.Locator("#DeletePassword").FillAsync(login.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete my account" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("Your account is deleted.");
        // The catalog's copy of the buyer's task and valuation went with the account (after the export above).
        var after = await server.CatalogHoldingsAsync(login.Account.Id);
        Assert.Equal((0, 0), (after.Tasks, after.Valuations));
        Assert.Contains(await server.ReadAuditAsync(), e => e.ActorId == login.Account.Id && e.Action == "account.delete"
            && e.Target.Contains("1 tasks and 1 valuations deleted", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.Unauthorized, (await login.Account.Http.GetAsync("/api/me")).StatusCode);
        // The other browser's session ends at its next request.
        await otherSession.GotoAsync("/buyer");
        Assert.Equal("/signin", new Uri(otherSession.Url).AbsolutePath, StringComparer.OrdinalIgnoreCase);
        await otherSession.GetByLabel("Account name").FillAsync(login.Name);
        await otherSession.GetByLabel("Password").FillAsync(login.Password);
        var signIn = await PostByClickingAsync(otherSession, "Sign in");
        Assert.Equal(401, signIn.Status);
    }

    [Fact]
    public async Task a_deleted_sellers_drafts_go_and_its_listed_data_is_withdrawn_but_still_downloads_for_its_buyer()
    {
        var login = await server.WebLoginAsync("seller");
        var draft = await EmbeddedServer.CreateListingAsync(login.Account.Http, "my draft");
        var listed = await EmbeddedServer.CreateListingAsync(login.Account.Http, "my listed data");
        Assert.Equal(HttpStatusCode.OK, (await login.Account.Http.PutAsync($"/api/listings/{listed}/data?format=csv&fileName=s.csv", EmbeddedServer.Text(s_market.Sellers[2].Csv))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await login.Account.Http.PutAsJsonAsync($"/api/terms/{listed}", new { reserve = 100 })).StatusCode);
        var buyer = (await server.SignUpAsync("buyer-keeps")).Http;
        var task = await TaskThroughTheApiAsync(buyer);
        var requested = await buyer.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listed }, method = "tiered-knn-shapley", k = 3 });
        var valuation = (await requested.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        using (var patience = new CancellationTokenSource(TimeSpan.FromMinutes(3)))
        {
            while ((await buyer.GetFromJsonAsync<JsonElement>($"/api/valuations/{valuation}", patience.Token)).GetProperty("status").GetString() is "Pending" or "Running")
            {
                await Task.Delay(100, patience.Token);
            }
        }

        var quote = await (await buyer.PostAsJsonAsync("/api/quotes", new { valuationId = valuation })).Content.ReadFromJsonAsync<JsonElement>();
        var purchase = await (await buyer.PostAsJsonAsync("/api/purchases", new { quoteId = quote.GetProperty("id").GetGuid() })).Content.ReadFromJsonAsync<JsonElement>();
        var purchaseId = purchase.GetProperty("id").GetGuid();

        var page = await SignedInPageAsync(login);
        await page.GotoAsync("/account");
        await page.Locator("#DeletePassword").FillAsync(login.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete my account" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("Your account is deleted.");

        Assert.Equal(["Withdrawn withdrawn listing"], (await server.CatalogHoldingsAsync(login.Account.Id)).Listings);
        var visible = await buyer.GetFromJsonAsync<JsonElement>("/api/listings");
        Assert.DoesNotContain(visible.EnumerateArray(), l => l.GetProperty("id").GetGuid() == listed || l.GetProperty("id").GetGuid() == draft);
        // The buyer paid for the data before the seller left: the download still works.
        Assert.Equal(s_market.Sellers[2].Csv, await buyer.GetStringAsync($"/api/purchases/{purchaseId}/download"));
    }

    [Fact]
    public async Task valuation_requests_from_the_web_ui_share_the_buyers_rate_limit()
    {
        var login = await server.WebLoginAsync("buyer");
        var valuation = await ValuationThroughTheApiAsync(login.Account.Http);
        var first = await login.Account.Http.GetFromJsonAsync<JsonElement>($"/api/valuations/{valuation}");
        var page = await SignedInPageAsync(login);
        await page.GotoAsync("/buyer");
        var token = await page.Locator("form[action='/buyer/request-valuation'] input[name=__RequestVerificationToken]").GetAttributeAsync("value");

        // One request went through the API already. Twice the per-minute limit in form posts: even if a minute's window
        // turns over during the run, at most the limit passes in each, so some are refused.
        var statuses = new List<int>();
        for (var i = 0; i < 2 * EmbeddedServer.ValuationRequestsPerMinute; i++)
        {
            var form = page.Context.APIRequest.CreateFormData();
            form.Set("__RequestVerificationToken", token!);
            form.Set("TaskId", first.GetProperty("taskId").GetString()!);
            form.Append("ListingIds", first.GetProperty("listingIds")[0].GetString()!);
            form.Set("Method", "knn-shapley");
            form.Set("K", "1");
            var response = await page.Context.APIRequest.PostAsync(server.Address + "buyer/request-valuation", new() { Form = form, MaxRedirects = 0 });
            statuses.Add(response.Status);
        }

        Assert.Contains(302, statuses);
        Assert.Contains(429, statuses);
        Assert.All(statuses, status => Assert.True(status is 302 or 429, $"unexpected status {status}"));
        // The API counts the same requests: its limit is spent too.
        var api = await login.Account.Http.PostAsJsonAsync("/api/valuations", new { taskId = first.GetProperty("taskId").GetGuid(), listingIds = new[] { first.GetProperty("listingIds")[0].GetGuid() }, k = 1 });
        Assert.Equal(HttpStatusCode.TooManyRequests, api.StatusCode);
    }

    [Fact]
    public async Task the_api_reference_page_renders_the_catalog_document_offline()
    {
        var context = await browser.NewContextAsync(server.Address);
        var page = await context.NewPageAsync();
        var response = await page.GotoAsync("/api-reference");
        Assert.Equal(200, response!.Status);
        // Scalar's script is served by the gateway itself (no CDN): the rendered page shows the document's title and calls.
        await Expect(page.GetByText("DataMarket catalog API").First).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await Expect(page.GetByText("Request a valuation of listings for a test task").First).ToBeVisibleAsync();
        await browser.ScreenshotAsync(page, "api-reference", fullPage: false);
    }

    [Fact]
    public async Task serve_prints_the_web_address_and_demo_logins_that_sign_in()
    {
        using var folder = new TempFolder();
        using var stop = new CancellationTokenSource();
        var output = new LineWriter();
        var run = CliApplication.InvokeAsync(
            ["serve", "--data-dir", folder.Path, "--urls", "http://127.0.0.1:0"], new InvocationConfiguration { Output = output, Error = output }, stop.Token);
        try
        {
            var printed = await Task.WhenAny(output.LineStarting("API keys"), run);
            Assert.True(printed != run, $"serve ended before printing its logins: {output}");
            var lines = output.Lines();
            var address = new Uri(lines.Single(l => l.StartsWith("Web UI: open ", StringComparison.Ordinal)).Split(' ')[3]);
            var logins = lines.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(words => words.Length == 5 && words[1] == "name" && words[3] == "password")
                .ToDictionary(words => words[2], words => new EmbeddedServer.WebLogin(words[2], words[4], null!));
            Assert.Equal(["demo-buyer", "demo-operator", "demo-seller"], logins.Keys.Order());

            var buyer = await SignedInPageAsync(logins["demo-buyer"], address);
            Assert.Equal("/buyer", new Uri(buyer.Url).AbsolutePath);
            var seller = await SignedInPageAsync(logins["demo-seller"], address);
            Assert.Equal("/seller", new Uri(seller.Url).AbsolutePath);
            var operatorPage = await SignedInPageAsync(logins["demo-operator"], address);
            Assert.Equal("/operator", new Uri(operatorPage.Url).AbsolutePath);
        }
        finally
        {
            await stop.CancelAsync();
            await run;
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        }
    }

    private Task<IPage> SignedInPageAsync(EmbeddedServer.WebLogin login) => SignedInPageAsync(login, server.Address);

    private async Task<IPage> SignedInPageAsync(EmbeddedServer.WebLogin login, Uri address)
    {
        var context = await browser.NewContextAsync(address);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/signin");
        await page.GetByLabel("Account name").FillAsync(login.Name);
        await page.GetByLabel("Password").FillAsync(login.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        if (new Uri(page.Url).AbsolutePath == "/signin/second-factor")
        {
            // Operators: enrol the authenticator at the first sign-in (the key is on the page), then its code.
            var enrolment = page.GetByTestId("totp-key");
            var secret = await enrolment.CountAsync() == 1 ? await enrolment.InnerTextAsync() : s_totpSecrets[login.Name];
            s_totpSecrets[login.Name] = secret;
            await page.GetByLabel("Code").FillAsync(TotpCode(secret, TimeSpan.Zero));
            await page.GetByRole(AriaRole.Button, new() { Name = "Continue" }).ClickAsync();
        }

        await Expect(page.GetByTestId("signed-in-as")).ToContainTextAsync(login.Name);
        return page;
    }

    /// <summary>Clicks a form's button and answers the response to the POST it sends (before any redirect is followed).</summary>
    private static Task<IResponse> PostByClickingAsync(IPage page, string button) =>
        page.RunAndWaitForResponseAsync(() => page.GetByRole(AriaRole.Button, new() { Name = button }).ClickAsync(), r => r.Request.Method == "POST");

    /// <summary>Playwright uploads the file's name and bytes; a payload spares a temporary file.</summary>
    private static FilePayload CsvFile(string name, string csv) => new() { Name = name, MimeType = "text/csv", Buffer = System.Text.Encoding.UTF8.GetBytes(csv) };

    /// <summary>The code an authenticator app shows <paramref name="ahead"/> from now.</summary>
    private static string TotpCode(string secret, TimeSpan ahead) =>
        new OtpNet.Totp(OtpNet.Base32Encoding.ToBytes(secret)).ComputeTotp(DateTime.UtcNow + ahead);

    private async Task<Guid> TaskThroughTheApiAsync(HttpClient buyer)
    {
        var posted = await buyer.PostAsync("/api/tasks?name=t&format=csv&fileName=t.csv", EmbeddedServer.Text(s_market.TestTaskCsv));
        Assert.Equal(HttpStatusCode.Created, posted.StatusCode);
        return (await posted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private async Task<Guid> ValuationThroughTheApiAsync(HttpClient buyer)
    {
        var seller = (await server.SignUpAsync("seller-api")).Http;
        var listing = await EmbeddedServer.CreateListingAsync(seller, "api listing");
        var uploaded = await seller.PutAsync($"/api/listings/{listing}/data?format=csv&fileName=s.csv", EmbeddedServer.Text(s_market.Sellers[1].Csv));
        Assert.Equal(HttpStatusCode.OK, uploaded.StatusCode);
        var task = await TaskThroughTheApiAsync(buyer);
        var requested = await buyer.PostAsJsonAsync("/api/valuations", new { taskId = task, listingIds = new[] { listing }, k = 3 });
        Assert.Equal(HttpStatusCode.Accepted, requested.StatusCode);
        return (await requested.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private static string G4(double value) => value.ToString("G4", CultureInfo.InvariantCulture);

    private static string Cents(long amount) => string.Create(CultureInfo.InvariantCulture, $"{amount / 100}.{amount % 100:00} USD");
}

/// <summary>
/// One headless Chromium for the class: Debian's <c>/usr/bin/chromium</c> (deploy/local/infra.sh installs it), or the
/// executable named by <c>DATAMARKET_CHROMIUM</c>. Playwright's own browser download is never used.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public static string ScreenshotFolder => Path.Combine(AppContext.BaseDirectory, "browser-screenshots");

    public async Task InitializeAsync()
    {
        var executable = Environment.GetEnvironmentVariable("DATAMARKET_CHROMIUM") is { Length: > 0 } configured ? configured : "/usr/bin/chromium";
        Assert.True(File.Exists(executable), $"Chromium not found at {executable}: run deploy/local/infra.sh (installs Debian's chromium) or set DATAMARKET_CHROMIUM");
        _playwright = await Playwright.CreateAsync();
        // Expect(...) retries until its condition holds; its default of 5 seconds is short for a busy CI machine.
        SetDefaultExpectTimeout(30_000);
        // --no-sandbox: CI runs the tests as root, where Chromium's sandbox refuses to start.
        _browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = executable, Headless = true, Args = ["--no-sandbox"] });
    }

    public async Task<IBrowserContext> NewContextAsync(Uri address)
    {
        var context = await _browser.NewContextAsync(new() { BaseURL = address.ToString().TrimEnd('/'), ViewportSize = new() { Width = 1200, Height = 900 } });
        // Generous: the suite shares a loaded machine, and every wait ends as soon as its condition holds.
        context.SetDefaultTimeout(60_000);
        context.SetDefaultNavigationTimeout(60_000);
        return context;
    }

    public async Task ScreenshotAsync(IPage page, string name, bool fullPage = true)
    {
        Directory.CreateDirectory(ScreenshotFolder);
        await page.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, name + ".png"), FullPage = fullPage });
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }
}

/// <summary>Collects what a running command prints, line by line, and says when a line of interest has appeared.</summary>
internal sealed class LineWriter : TextWriter
{
    private readonly object _gate = new();
    private readonly System.Text.StringBuilder _text = new();
    private readonly List<(string Prefix, TaskCompletionSource Seen)> _waiting = [];

    public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

    public override void Write(char value)
    {
        lock (_gate)
        {
            _text.Append(value);
            if (value == '\n')
            {
                var lines = Lines();
                foreach (var (prefix, seen) in _waiting.Where(w => lines.Any(l => l.StartsWith(w.Prefix, StringComparison.Ordinal))))
                {
                    seen.TrySetResult();
                }
            }
        }
    }

    public Task LineStarting(string prefix)
    {
        lock (_gate)
        {
            var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting.Add((prefix, seen));
            if (Lines().Any(l => l.StartsWith(prefix, StringComparison.Ordinal)))
            {
                seen.TrySetResult();
            }

            return seen.Task;
        }
    }

    public IReadOnlyList<string> Lines()
    {
        lock (_gate)
        {
            return _text.ToString().Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        }
    }

    public override string ToString()
    {
        lock (_gate)
        {
            return _text.ToString();
        }
    }
}
